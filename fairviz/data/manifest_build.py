"""Building the features of a manifest's videos: decode the clips on a few threads (frames
streamed into the cache being built), embed the transcripts, assemble the FeatureSet."""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from fairviz.data import features as F
from fairviz.data.features._extract import feature_meta
from fairviz.data.video_clips import VideoReadError, read_audio, read_frames

log = logging.getLogger("fairviz.data.video_dataset")


def read_clip(path: str, frames: int, size: int, sampling: str, n_mfcc: int,
              mfcc_steps: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(frames uint8 (T, S, S, 3), MFCC float32 (steps, n_mfcc), has audio) of one clip."""
    video = read_frames(path, frames, size, sampling)
    audio = read_audio(path)
    mfcc = F.compute_mfcc([audio], F.SAMPLE_RATE, n_mfcc=n_mfcc, steps=mfcc_steps)[0]
    return video, mfcc, audio.size > 0


def _ordered_map(fn, n: int, workers: int) -> Iterator:
    """``fn(i)`` for i in range(n), in order, at most ``2 × workers`` in flight (memory stays
    bounded however slowly the results are consumed)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        for i in range(n):
            pending.append(pool.submit(fn, i))
            if len(pending) >= 2 * max(1, workers):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def warn_cached_skips(features: F.FeatureSet) -> None:
    """Log the videos a cache hit leaves out (they were skipped when the cache was built)."""
    if features.meta.get("cache_hit") and features.meta.get("n_skipped"):
        log.warning("cached features skip %d video(s) of the manifest (missing, unreadable or too "
                    "short): %s", features.meta["n_skipped"],
                    ", ".join(s["video"] for s in features.meta["skipped"][:5]))


@dataclass
class ManifestBuild:
    """One manifest's feature build, given to `features.cached_features`: decode every clip (frames
    streamed into the cache), embed the transcripts, assemble the FeatureSet of the readable rows."""

    df: pd.DataFrame
    manifest_csv: Path
    codes: np.ndarray  # (len(df),) group codes {0, 1}
    group_info: dict
    text_model: dict  # `features.text_model_info` of the model
    frames: int
    size: int
    sampling: str
    n_mfcc: int
    mfcc_steps: int
    workers: int
    progress: F.Progress | None

    def build(self, writer: F.FeatureWriter) -> F.FeatureSet:
        df = self.df
        keep, mfcc, skipped, no_audio = self._decode(writer)
        info = self.text_model
        text = F.embed_texts(df["transcript"].iloc[keep].tolist(), info["path"], progress=self.progress)
        split = df["split"].iloc[keep].to_numpy(dtype=str) if "split" in df.columns else None
        meta = {
            "source": "manifest",
            "manifest": str(self.manifest_csv.resolve()),
            "n": len(keep),
            "frames": self.frames,
            "size": self.size,
            "sampling": self.sampling,
            **self.group_info,
            "skipped": skipped,
            "n_skipped": len(skipped),
            "no_audio": no_audio,
            **feature_meta(self.n_mfcc, self.mfcc_steps, info, text.shape[1], mfcc),
        }
        return F.FeatureSet(
            video=writer.finish("video"),
            mfcc=mfcc,
            text=text,
            label=df["label"].to_numpy(dtype=np.float32)[keep],
            group=self.codes[keep],
            ids=df["id"].iloc[keep].tolist(),
            split=split,
            meta=meta,
        )

    def _read(self, i: int):
        """Frames, MFCC and has-audio of clip ``i``, or the VideoReadError that skips it."""
        try:
            return read_clip(self.df["path"].iat[i], self.frames, self.size, self.sampling, self.n_mfcc,
                             self.mfcc_steps)
        except VideoReadError as err:
            return err

    def _decode(self, writer: F.FeatureWriter) -> tuple[list[int], np.ndarray, list[dict], list[str]]:
        """Decode every clip in manifest order; frames go straight into the cache. Returns the kept
        rows, their MFCCs float32 (kept, steps, n_mfcc), the skipped clips and those without audio."""
        n, progress = len(self.df), self.progress
        video_out = writer.rows("video", np.uint8, (self.frames, self.size, self.size, 3), max_rows=n)
        mfcc, keep, skipped, no_audio = [], [], [], []
        if progress is not None:
            progress(0, n, "decode")
        for i, res in enumerate(_ordered_map(self._read, n, self.workers)):
            name = str(self.df["video"].iat[i])
            if isinstance(res, Exception):
                skipped.append({"video": name, "reason": str(res)})
                log.warning("skipping video %s: %s", name, res)
            else:
                video_out.append(res[0][None])
                mfcc.append(res[1])
                keep.append(i)
                if not res[2]:
                    no_audio.append(name)
            if progress is not None:
                progress(i + 1, n, "decode")
        if skipped:
            log.warning("skipped %d of %d videos (missing, unreadable or too short)", len(skipped), n)
        if not keep:
            listed = "; ".join(f"{s['video']}: {s['reason']}" for s in skipped[:5])
            raise ValueError(f"none of the {n} videos in {self.manifest_csv.name} could be read ({listed})")
        return keep, np.stack(mfcc), skipped, no_audio
