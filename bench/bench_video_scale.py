"""Memory and time of the First Impressions recipe at the paper's resolution (30 frames of 112²).

    python bench/bench_video_scale.py --root /scratch/fi --clips 2000 --write

Three steps, each in its own process so that each peak RSS is its own:

1. ``generate``: a corpus in the First Impressions layout (``fairviz.data.fi_corpus``: 15 s,
   456×256, 30 fps, AAC audio); ``--unique`` clips are encoded, the rest are hard links to them
   (every file is still decoded on its own in step 2);
2. ``features``: manifest from the folder, then ``load_manifest_features`` at ``--frames`` ×
   ``--size``² from scratch (decode, MFCC, text), the frames streamed into the cache;
3. ``train``: one epoch of ``train`` (method ``ours``, batch ``--batch-size``, frame encoder
   ``--frame-encoder``) from the memory-mapped cache, with the validation and test passes (a
   frozen pretrained encoder builds its cached frame features first, inside this step's time).

Peak RSS is ``ru_maxrss`` of the step's process (ffmpeg children reported apart). The feature
cache goes to ``ROOT/../cache`` (``FAIRVIZ_CACHE``), outside git.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import machine, update_section  # noqa: E402

SECTION = "bench_video_scale"


def _peak_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: kB


def step_generate(args) -> dict:
    from fairviz.data.fi_corpus import make_fi_corpus

    t = time.perf_counter()
    make_fi_corpus(args.root, args.clips, unique=args.unique)
    return {"seconds": time.perf_counter() - t}


def step_features(args) -> dict:
    from fairviz.data.first_impressions import build_manifest
    from fairviz.data.video_dataset import load_manifest_features

    manifest = Path(args.root) / "manifest.csv"
    t = time.perf_counter()
    build_manifest(args.root, manifest)
    fs = load_manifest_features(manifest, frames=args.frames, size=args.size, refresh=True, mmap=True)
    seconds = time.perf_counter() - t
    cache = Path(fs.meta["cache_path"])
    return {"seconds": seconds, "n": len(fs), "n_skipped": fs.meta["n_skipped"],
            "video_gb": fs.video.nbytes / 1e9, "cache_gb": sum(p.stat().st_size for p in cache.iterdir()) / 1e9}


def step_train(args) -> dict:
    import torch

    from fairviz.train import TrainConfig, train

    torch.set_num_threads(os.cpu_count() or 1)
    cfg = TrainConfig(method="ours", data=str(Path(args.root) / "manifest.csv"), frames=args.frames,
                      size=args.size, epochs=1, batch_size=args.batch_size, device="cpu", n_boot=50,
                      frame_encoder=args.frame_encoder)
    t = time.perf_counter()
    run = train(cfg)
    return {"seconds": time.perf_counter() - t, "epoch_seconds": run.history[0]["seconds"],
            "n_train": run.info["n_train"], "n_val": run.info["n_val"], "n_test": run.info["n_test"],
            "video_shape": run.info["video_shape"], "threads": torch.get_num_threads()}


STEPS = {"generate": step_generate, "features": step_features, "train": step_train}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", required=True, help="folder for the generated corpus (outside git)")
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--unique", type=int, default=100, help="clips encoded; the rest are hard links")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--frame-encoder", default="cnn", help="train step: cnn or a pretrained backbone (model.backbones)")
    ap.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS))
    ap.add_argument("--step", choices=list(STEPS), help=argparse.SUPPRESS)  # one step, in this process
    ap.add_argument("--write", action="store_true", help="record the results in bench/RESULTS.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("FAIRVIZ_CACHE", str(Path(args.root).resolve().parent / "cache"))

    if args.step:
        out = STEPS[args.step](args)
        out.update(peak_rss_mb=_peak_mb(), children_peak_rss_mb=_peak_mb(resource.RUSAGE_CHILDREN))
        print("RESULT " + json.dumps(out), flush=True)
        return 0
    results = {}
    for step in args.steps:
        cmd = [sys.executable, __file__, "--step", step, *(argv if argv is not None else sys.argv[1:])]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        results[step] = json.loads(lines[-1][7:])
        print(step, results[step], flush=True)
    path = Path(args.root).resolve().parent / "bench_video_scale.json"
    path.write_text(json.dumps(results, indent=1))
    if args.write:
        update_section(SECTION, report(args, results))
    return 0


def report(args, r: dict) -> str:
    lines = [
        "## First Impressions at 30×112²: memory and time (`bench/bench_video_scale.py`)",
        "",
        f"{machine()}.",
        f"Corpus: {args.clips} generated clips in the First Impressions layout (15 s, 456×256, 30 fps, "
        f"AAC), {args.unique} encoded and the rest hard links to them; features at {args.frames} frames "
        f"of {args.size}×{args.size}.",
        "",
        "| step | wall time | peak RSS (this process) | peak RSS (children: ffmpeg) | notes |",
        "|---|---:|---:|---:|---|",
    ]
    if "generate" in r:
        g = r["generate"]
        lines.append(f"| generate corpus | {g['seconds'] / 60:.1f} min | {g['peak_rss_mb']:,.0f} MB | "
                     f"{g['children_peak_rss_mb']:,.0f} MB | |")
    if "features" in r:
        f = r["features"]
        lines.append(f"| features (manifest + decode + MFCC + text) | {f['seconds'] / 60:.1f} min "
                     f"({f['seconds'] / max(f['n'], 1):.2f} s a clip) | **{f['peak_rss_mb']:,.0f} MB** "
                     f"(target ≤ 2,048) | {f['children_peak_rss_mb']:,.0f} MB | {f['n']} clips, frames "
                     f"{f['video_gb']:.2f} GB, cache {f['cache_gb']:.2f} GB on disk |")
    if "train" in r:
        t = r["train"]
        lines.append(f"| train 1 epoch (`ours`, batch {args.batch_size}, `{args.frame_encoder}`, {t['threads']} threads) | "
                     f"{t['epoch_seconds'] / 60:.1f} min epoch, {t['seconds'] / 60:.1f} min in all "
                     f"| **{t['peak_rss_mb']:,.0f} MB** (target ≤ 3,072) | — | {t['n_train']} train / "
                     f"{t['n_val']} val / {t['n_test']} test clips, "
                     f"{t['n_train'] / t['epoch_seconds']:.1f} training clips/s, input {t['video_shape']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
