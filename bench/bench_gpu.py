"""Clips per second for preprocessing, loading and training at 8×32² and 30×112², in one call.

    python bench/bench_gpu.py                 # on a GPU machine: a few minutes
    python bench/bench_gpu.py --write         # also record the table in bench/RESULTS.md
    python bench/bench_gpu.py --tiny          # CPU smoke run (seconds; smaller sizes)

For each resolution (frames × size²):

- **preprocessing**: generated clips shaped like First Impressions (15 s, 456×256, 30 fps, AAC)
  through ``load_manifest_features`` (decode + resize, ffmpeg audio + MFCC, text embedding),
  built from scratch: clips / s of wall time;
- **loading**: every row of a memory-mapped feature cache of ``--load-clips`` clips, read in
  batches by the training loader (``fairviz.data.loader.iter_batches``) and put on the device
  (pinned memory and prefetch on CUDA): clips / s of a first pass right after the cache was
  written (so mostly from the page cache, and paying for first-call set-up) and of a second pass;
- **training**: method ``ours`` on that cache, default model, ``--batch-size``: training clips per
  second of the last epoch (forward, backward, optimiser, loader; the validation pass excluded).

Everything is written under a temporary folder (the feature cache too) and deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import machine, update_section  # noqa: E402

SECTION = "bench_gpu"


def synthetic_cache(n: int, frames: int, size: int, *, mmap: bool = True, seed: int = 0):
    """A FeatureSet of ``n`` random clips (group and label signals in the pixels and text), built
    row by row into the feature cache and returned memory-mapped."""
    import numpy as np

    from fairviz.data import features as F

    def build(writer):
        rng = np.random.default_rng(seed)
        group = np.arange(n) % 2
        label = np.clip(0.5 + 0.2 * rng.normal(size=n), 0, 1).astype(np.float32)
        out = writer.rows("video", np.uint8, (frames, size, size, 3), max_rows=n)
        for start in range(0, n, 64):
            g = group[start:start + 64]
            block = rng.integers(0, 128, (len(g), frames, size, size, 3), dtype=np.uint8)
            block[..., 0] += (100 * g).astype(np.uint8)[:, None, None, None]
            out.append(block)
        text = (0.3 * rng.normal(size=(n, 384))).astype(np.float32)
        text[:, 0] += 4 * (label - 0.5)
        mfcc = rng.normal(size=(n, F.DEFAULT_MFCC_STEPS, F.DEFAULT_N_MFCC)).astype(np.float32)
        return F.FeatureSet(video=writer.finish("video"), mfcc=mfcc, text=text, label=label,
                            group=group, ids=[f"c{i}" for i in range(n)], meta={"source": "bench"})

    material = {"source": "bench", "n": n, "frames": frames, "size": size, "seed": seed}
    return F.cached_features("bench", material, build, mmap=mmap)


def bench_preprocessing(root: Path, n: int, frames: int, size: int, workers: int) -> float:
    from fairviz.data.features import embed_texts
    from fairviz.data.first_impressions import build_manifest
    from fairviz.data.video_dataset import load_manifest_features

    manifest = root / "manifest.csv"
    if not manifest.exists():
        build_manifest(root, manifest)
        embed_texts(["warm up"])  # load the text model before the clock starts
    t = time.perf_counter()
    fs = load_manifest_features(manifest, frames=frames, size=size, workers=workers, refresh=True)
    return len(fs) / (time.perf_counter() - t)


def bench_loading(features, device, batch_size: int) -> float:
    import numpy as np

    from fairviz.data import loader
    from fairviz.train import prepared_from_features

    data = prepared_from_features(features, _config(batch_size, device, 1))
    rows = np.arange(len(features))
    batches = [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]
    t = time.perf_counter()
    for _ in loader.iter_batches(data.video, data.mfcc, data.text, batches, device):
        pass
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)
    return len(rows) / (time.perf_counter() - t)


def _config(batch_size: int, device, epochs: int):
    from fairviz.train import TrainConfig

    return TrainConfig(method="ours", epochs=epochs, batch_size=batch_size, device=str(device),
                       n_boot=10, n_perm=3)


def bench_training(features, device, batch_size: int, epochs: int) -> float:
    from fairviz.train import train

    run = train(_config(batch_size, device, epochs), features=features)
    last = run.history[-1]
    return run.info["n_train"] / last["seconds"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1")
    ap.add_argument("--pre-clips", type=int, default=64, help="clips preprocessed per resolution (64)")
    ap.add_argument("--load-clips", type=int, default=2000, help="clips in the loading/training cache (2000)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=2, help="training epochs; the last one is timed (2)")
    ap.add_argument("--workers", type=int, default=None, help="videos decoded at once (default: CPU count)")
    ap.add_argument("--tiny", action="store_true", help="smoke run: 4×16² and 8×32², a few clips of 2 s")
    ap.add_argument("--write", action="store_true", help="record the table in bench/RESULTS.md")
    args = ap.parse_args(argv)

    import torch

    from fairviz.data.fi_corpus import make_fi_corpus
    from fairviz.train import resolve_device

    device = resolve_device(args.device)
    settings = [(4, 16), (8, 32)] if args.tiny else [(8, 32), (30, 112)]
    seconds = 2.0 if args.tiny else 15.0
    if args.tiny:
        args.pre_clips, args.load_clips, args.epochs = min(args.pre_clips, 10), min(args.load_clips, 96), 1
    workers = args.workers or os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="fairviz-bench-gpu-") as tmp:
        os.environ["FAIRVIZ_CACHE"] = str(Path(tmp) / "cache")
        root = make_fi_corpus(Path(tmp) / "fi", args.pre_clips, seconds=seconds,
                              unique=min(args.pre_clips, 16))
        for frames, size in settings:
            pre = bench_preprocessing(root, args.pre_clips, frames, size, workers)
            features = synthetic_cache(args.load_clips, frames, size)
            cold = bench_loading(features, device, args.batch_size)
            warm = bench_loading(features, device, args.batch_size)
            fit = bench_training(features, device, args.batch_size, args.epochs)
            rows.append((f"{frames}×{size}²", pre, cold, warm, fit))
            print(f"{frames:3d}×{size}²  preprocessing {pre:8.1f} clips/s  loading {cold:9.0f} clips/s "
                  f"(2nd pass {warm:9.0f})  training {fit:8.1f} clips/s", flush=True)
            del features
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU (CPU run)"
    lines = [
        "## GPU throughput (`bench/bench_gpu.py`)",
        "",
        f"Device: {device} — {gpu}; {machine()}; torch {torch.__version__}.",
        f"Preprocessing: {args.pre_clips} generated First-Impressions-shaped clips ({seconds:g} s, 456×256, "
        f"30 fps, AAC), {workers} decode workers. Loading and training: a memory-mapped cache of "
        f"{args.load_clips} clips, batch {args.batch_size}, method `ours`, default model, last of "
        f"{args.epochs} epochs.",
        "",
        "| frames × size² | preprocessing clips/s | loading clips/s (1st pass) | loading clips/s (2nd pass) | training clips/s |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r[0]} | {r[1]:,.1f} | {r[2]:,.0f} | {r[3]:,.0f} | {r[4]:,.1f} |" for r in rows]
    print("\n".join(lines))
    if args.write:
        update_section(SECTION, "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
