"""Train a tiny model and dump what it did as JSON: run as one process or under torchrun.

    python tests/distributed/worker.py OUT.json BATCH_SIZE [METHOD [OPTION ...]]
    torchrun --nproc-per-node 2 tests/distributed/worker.py OUT.json BATCH_SIZE [METHOD [OPTION ...]]

OPTION "k4": the 4-group tiny set of tests/test_train_kgroups.py instead of the binary one;
"pooled": the pooled k-group W1 form (TrainConfig.w1_form; default "spdd");
"sample": sampling bias (fairoffset's fairness term then reads batches of the whole training split).

Only rank 0 writes OUT.json. Dropout is 0 so that the processes draw no random masks.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `tests`

from fairviz.train import TrainConfig, train  # noqa: E402
from tests.test_train import tiny_features  # noqa: E402
from tests.test_train_kgroups import tiny_features_k  # noqa: E402


def main() -> None:
    out, batch_size = sys.argv[1], int(sys.argv[2])
    method = sys.argv[3] if len(sys.argv) > 3 else "ours"
    options = sys.argv[4:]
    k_groups, w1_form = "k4" in options, "pooled" if "pooled" in options else "spdd"
    bias_mode = "sample" if "sample" in options else "label"
    model = dict(video_channels=[4], video_hidden=4, audio_proj=4, audio_hidden=4, text_hidden=4,
                 regressor_hidden=8, adversary_hidden=8, dropout=0.0)
    cfg = TrainConfig(method=method, epochs=2, batch_size=batch_size, model=model, n_boot=20,
                      n_perm=3, lr=5e-3, lambda_w=1.0, lambda_sw=1.0, adv_weight=0.5, device="cpu",
                      bias_mode=bias_mode, w1_form=w1_form)
    steps = []
    run = train(cfg, progress=lambda e: steps.append(e["losses"]) if e["stage"] == "step" else None,
                features=tiny_features_k(n=192) if k_groups else tiny_features(n=192))
    if run.info.get("rank", 0) == 0:
        record = {
            "steps": steps,
            "metrics": {k: run.metrics[k]["value"] for k in ("pcc", "srcc", "spdd", "speo")},
            "scores": run.predictions["score"].tolist(),
            "world_size": run.info.get("world_size", 1),
            "group_offset": run.info.get("group_offset"),  # fairoffset: b, or the k - 1 offsets
        }
        with open(out, "w") as fh:
            json.dump(record, fh)


if __name__ == "__main__":
    main()
