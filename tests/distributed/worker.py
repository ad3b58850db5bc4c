"""Train a tiny model and dump what it did as JSON: run as one process or under torchrun.

    python tests/distributed/worker.py OUT.json BATCH_SIZE [METHOD]
    torchrun --nproc-per-node 2 tests/distributed/worker.py OUT.json BATCH_SIZE [METHOD]

Only rank 0 writes OUT.json. Dropout is 0 so that the processes draw no random masks.
"""

import json
import sys

import numpy as np

from fairviz.data.features import FeatureSet
from fairviz.train import TrainConfig, train


def tiny_features(n=192, seed=0) -> FeatureSet:
    rng = np.random.default_rng(seed)
    g = np.arange(n) % 2
    y = np.clip(0.5 + 0.18 * rng.normal(size=n), 0, 1)
    video = rng.integers(0, 60, (n, 2, 16, 16, 3), dtype=np.uint8)
    video[g == 1, :, :, :, 0] += 120
    mfcc = rng.normal(size=(n, 4, 5)).astype(np.float32)
    mfcc[:, :, 0] += 2.0 * g[:, None]
    text = rng.normal(size=(n, 8)).astype(np.float32) * 0.3
    text[:, 0] += 4 * (y - 0.5)
    return FeatureSet(video=video, mfcc=mfcc, text=text, label=y, group=g, ids=[f"c{i}" for i in range(n)])


def main() -> None:
    out, batch_size = sys.argv[1], int(sys.argv[2])
    method = sys.argv[3] if len(sys.argv) > 3 else "ours"
    model = dict(video_channels=[4], video_hidden=4, audio_proj=4, audio_hidden=4, text_hidden=4,
                 regressor_hidden=8, adversary_hidden=8, dropout=0.0)
    cfg = TrainConfig(method=method, epochs=2, batch_size=batch_size, model=model, n_boot=20,
                      n_perm=3, lr=5e-3, lambda_w=1.0, adv_weight=0.5, device="cpu")
    steps = []
    run = train(cfg, progress=lambda e: steps.append(e["losses"]) if e["stage"] == "step" else None,
                features=tiny_features())
    if run.info.get("rank", 0) == 0:
        record = {
            "steps": steps,
            "metrics": {k: run.metrics[k]["value"] for k in ("pcc", "srcc", "spdd", "speo")},
            "scores": run.predictions["score"].tolist(),
            "world_size": run.info.get("world_size", 1),
        }
        with open(out, "w") as fh:
            json.dump(record, fh)


if __name__ == "__main__":
    main()
