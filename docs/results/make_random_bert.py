"""Write a small, randomly initialised BERT folder: the "weaker text encoder" of docs/RESULTS.md.

    python docs/results/make_random_bert.py OUT_DIR [--seed 0]

2 layers, hidden size 64, 2 heads, with the bundled MiniLM tokenizer; weights drawn from BERT's
own initialisation with torch seed `--seed`, saved as safetensors. Passing the folder as
`--text-model OUT_DIR` stands for a user who brings their own (here: poor) sentence encoder. Nothing
is downloaded.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def make_random_bert(out, seed: int = 0) -> Path:
    """Create the folder `out` (config.json, tokenizer files, model.safetensors) and return it."""
    import torch  # heavy; only this script needs it
    from transformers import BertConfig, BertModel

    from fairviz.data.features import default_text_model

    src, out = default_text_model(), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copy(src / name, out / name)
    vocab = sum(1 for _ in open(src / "vocab.txt", encoding="utf-8"))
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=128, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(out, safe_serialization=True)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(make_random_bert(a.out, a.seed))
