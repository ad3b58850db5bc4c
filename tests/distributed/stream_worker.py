"""Train from a memory-mapped feature cache and record every row read: one process or torchrun.

    python tests/distributed/stream_worker.py OUT BATCH_SIZE CACHE_FOLDER
    torchrun --nproc-per-node 2 tests/distributed/stream_worker.py OUT BATCH_SIZE CACHE_FOLDER

Each rank writes OUT.rank<r>.json: the rows of each video read (in order, and whether they came
from a memory map) and the split of the data.
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, for `tests`

import numpy as np  # noqa: E402

from fairviz.data import feature_store, loader  # noqa: E402
from fairviz.data.features import load_feature_cache  # noqa: E402
from fairviz.train import TrainConfig, prepared_from_features, train  # noqa: E402


def main() -> None:
    out, batch_size, cache = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    features = load_feature_cache(cache, "k", mmap=True)
    reads = []
    real_take_rows = loader.take_rows

    def recording_take_rows(arr, idx):
        reads.append({"rows": np.asarray(idx).tolist(), "mapped": feature_store.is_mapped(arr)})
        return real_take_rows(arr, idx)

    loader.take_rows = recording_take_rows
    model = dict(video_channels=[4], video_hidden=4, audio_proj=4, audio_hidden=4, text_hidden=4,
                 regressor_hidden=8, adversary_hidden=8, dropout=0.0)
    cfg = TrainConfig(method="ours", epochs=2, batch_size=batch_size, model=model, n_boot=10,
                      n_perm=3, device="cpu")
    run = train(cfg, features=features)
    data = prepared_from_features(features, cfg)
    record = {"rank": run.info.get("rank", 0), "world_size": run.info.get("world_size", 1),
              "reads": reads, "train": data.train_idx.tolist(),
              "eval": np.concatenate([data.val_idx, data.test_idx]).tolist()}
    with open(f"{out}.rank{os.environ.get('RANK', '0')}.json", "w") as fh:
        json.dump(record, fh)


if __name__ == "__main__":
    main()
