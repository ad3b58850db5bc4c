"""`python -m fairviz data ...`: build and cache the feature sets, convert First Impressions.

    fairviz data synthetic [--n N] [--seed S] [--text-model PATH]
    fairviz data manifest CSV [--frames T] [--size PX] [--privileged VALUE | --all-groups] [--text-model PATH]
    fairviz data first-impressions ROOT --out manifest.csv [--group gender|ethnicity] [--features]
    fairviz data export-examples OUT_DIR [--n 3] [--seed S]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fairviz.data.features import DEFAULT_MFCC_STEPS, DEFAULT_N_MFCC, load_synthetic_features
from fairviz.data.first_impressions import build_manifest
from fairviz.data.synthetic import export_examples, make_synthetic
from fairviz.data.video_dataset import load_manifest_features


class TqdmProgress:
    """A ``progress(done, total, stage)`` callback that draws one tqdm bar per stage (stderr)."""

    LABELS = {"cache": "cache", "generate": "generate", "decode": "decode videos",
              "text": "text (BERT)", "audio": "audio (MFCC)"}

    def __init__(self, disable: bool = False):
        self.bar = None
        self.stage = None
        self.disable = disable

    def __call__(self, done: int, total: int, stage: str) -> None:
        if stage != self.stage or self.bar is None:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=self.LABELS.get(stage, stage), unit="it",
                            file=sys.stderr, disable=self.disable, leave=True,
                            dynamic_ncols=True)
        if self.bar.total != total:
            self.bar.total = total
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def _describe(fs, seconds: float) -> None:
    cache = Path(fs.meta.get("cache_path", ""))
    hit = "loaded from cache" if fs.meta.get("cache_hit") else "built and cached"
    print(f"{len(fs)} candidates, {hit} in {seconds:.1f} s")
    print(f"  video {tuple(fs.video.shape)} uint8 ({fs.video.nbytes / 1e6:.1f} MB)")
    print(f"  mfcc  {tuple(fs.mfcc.shape)} float32 ({fs.mfcc.nbytes / 1e6:.1f} MB)")
    print(f"  text  {tuple(fs.text.shape)} float32 ({fs.text.nbytes / 1e6:.1f} MB)"
          f"  model {fs.meta.get('text_model', {}).get('path', '?')}")
    labels = fs.meta.get("group_labels")
    codes = range(max(2, len(labels or ())))
    counts = {g: int((fs.group == g).sum()) for g in codes}
    print(f"  groups {counts}" + (f"  ({', '.join(f'{g} = {labels[g]}' for g in codes)})" if labels else ""))
    if fs.split is not None:
        names, n = np.unique(fs.split, return_counts=True)
        print("  split " + ", ".join(f"{a}: {b}" for a, b in zip(names, n)))
    if cache.name:
        print(f"cache: {cache} ({_mb(cache):.1f} MB on disk)")


def _report_skipped(skipped: list[dict]) -> None:
    if not skipped:
        return
    print(f"skipped {len(skipped)} video(s) (missing or unreadable):", file=sys.stderr)
    for s in skipped[:20]:
        print(f"  {s['video']}: {s['reason']}", file=sys.stderr)
    if len(skipped) > 20:
        print(f"  ... and {len(skipped) - 20} more", file=sys.stderr)


def run_synthetic(args) -> int:
    gen = {k: v for k, v in (("frames", args.frames), ("size", args.size),
                              ("audio_seconds", args.audio_seconds)) if v is not None}
    progress = TqdmProgress(disable=args.quiet)
    start = time.perf_counter()
    try:
        fs = load_synthetic_features(args.n, seed=args.seed, text_model=args.text_model,
                                     n_mfcc=args.n_mfcc, mfcc_steps=args.mfcc_steps,
                                     progress=progress, refresh=args.refresh, **gen)
    finally:
        progress.close()
    _describe(fs, time.perf_counter() - start)
    return 0


def run_manifest(args) -> int:
    progress = TqdmProgress(disable=args.quiet)
    start = time.perf_counter()
    try:
        fs = load_manifest_features(args.csv, frames=args.frames, size=args.size,
                                    sampling=args.frame_sampling, text_model=args.text_model, n_mfcc=args.n_mfcc,
                                    mfcc_steps=args.mfcc_steps, privileged=args.privileged,
                                    all_groups=args.all_groups, workers=args.workers, progress=progress, refresh=args.refresh)
    finally:
        progress.close()
    _report_skipped(fs.meta.get("skipped") or [])
    if fs.meta.get("no_audio"):
        print(f"{len(fs.meta['no_audio'])} video(s) have no audio track (MFCC of silence used)",
              file=sys.stderr)
    _describe(fs, time.perf_counter() - start)
    return 0


def run_first_impressions(args) -> int:
    df = build_manifest(args.root, args.out, group=args.group)
    _report_skipped(df.attrs.get("skipped") or [])
    counts = df.groupby(["split", "group"]).size()
    print(f"wrote {args.out}: {len(df)} videos")
    for (split, group), n in counts.items():
        print(f"  {split:5s} {group}: {n}")
    if args.features:
        args.csv = args.out
        return run_manifest(args)
    return 0


def run_export(args) -> int:
    # Candidates are generated independently by index, so the first N of a small run are the
    # first N of the full default data set with the same seed.
    interviews = make_synthetic(max(2, args.n), seed=args.seed)
    df = export_examples(interviews, args.out_dir, n=args.n)
    out = Path(args.out_dir)
    for row in df.itertuples():
        print(f"{out / row.video}  label={row.label:.3f} group={row.group}")
    print(f"manifest: {out / 'manifest.csv'}")
    return 0


def _feature_args(p: argparse.ArgumentParser, *, video: bool) -> None:
    p.add_argument("--text-model", metavar="PATH", default=None,
                   help="local transformers model folder for the transcripts "
                        "(default: the bundled all-MiniLM-L6-v2)")
    p.add_argument("--n-mfcc", type=int, default=DEFAULT_N_MFCC, help="MFCC coefficients (%(default)s)")
    p.add_argument("--mfcc-steps", type=int, default=DEFAULT_MFCC_STEPS,
                   help="MFCC time steps per clip (%(default)s)")
    p.add_argument("--frames", type=int, default=None, help="video frames per clip")
    p.add_argument("--size", type=int, default=None, help="frame side in pixels")
    p.add_argument("--refresh", action="store_true", help="rebuild even if a cache exists")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    if video:
        p.add_argument("--frame-sampling", choices=("uniform", "consecutive"), default="uniform",
                       help="frames spread over the whole clip (uniform, default) or a run of "
                            "consecutive frames from its middle")
        p.add_argument("--privileged", default=None, metavar="VALUE",
                       help="group value coded 1 (default: 0/1 as given, else the last in sort order)")
        p.add_argument("--all-groups", action="store_true",
                       help="keep every value of a group column with more than two values as its own group")
        p.add_argument("--workers", type=int, default=None, help="videos decoded at once")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("data", help="prepare data: synthetic set, manifests, First Impressions",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="data_command", metavar="SOURCE", required=True)

    p = sub.add_parser("synthetic", help="generate + preprocess + cache the synthetic data set")
    p.add_argument("--n", type=int, default=None, help="candidates (default: DEFAULT_N_SAMPLES)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--audio-seconds", type=float, default=None)
    _feature_args(p, video=False)
    p.set_defaults(func=run_synthetic)

    p = sub.add_parser("manifest", help="preprocess + cache the videos of a manifest CSV")
    p.add_argument("csv", help="CSV with video,label,group[,transcript,split,id]")
    _feature_args(p, video=True)
    p.set_defaults(func=run_manifest)

    p = sub.add_parser("first-impressions", help="ChaLearn First Impressions V2 folder → manifest CSV")
    p.add_argument("root", help="the extracted data set folder")
    p.add_argument("--out", required=True, help="manifest CSV to write")
    p.add_argument("--group", choices=("gender", "ethnicity"), default="gender")
    p.add_argument("--features", action="store_true", help="also preprocess + cache the features")
    _feature_args(p, video=True)
    p.set_defaults(func=run_first_impressions)

    p = sub.add_parser("export-examples", help="write a few synthetic candidates as .mp4/.wav/.txt")
    p.add_argument("out_dir")
    p.add_argument("--n", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_export)
