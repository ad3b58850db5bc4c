"""The FeatureSet container and the constants every feature module shares."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from fairviz.data._checks import row_indices

#: Bump when the meaning or layout of cached arrays changes; old caches are then ignored.
FEATURE_FORMAT_VERSION = 2


Progress = Callable[[int, int, str], None]

ARRAY_FIELDS = ("video", "mfcc", "text", "label", "group")


@dataclass
class FeatureSet:
    """Preprocessed features of ``n`` candidates, in one row order.

    Attributes:
        video: uint8 ``(n, T, H, W, 3)`` RGB frames.
        mfcc: float32 ``(n, steps, n_mfcc)`` MFCC sequences.
        text: float32 ``(n, d)`` pooled sentence embeddings.
        label: float32 ``(n,)`` target score (in [0, 1] for the shipped data sets).
        group: int64 ``(n,)`` sensitive attribute, {0, 1}; 1 = privileged (k groups: 0..k-1, with
            ``meta["group_labels"]`` listing k labels). What the codes stand
            for is in ``meta["group_labels"]`` (``group_labels[code]`` = original value).
        ids: ``n`` candidate ids (str).
        split: ``(n,)`` str array ("train"/"val"/"test") when the source fixes a split, else None.
        meta: JSON-serialisable facts about the source and the preprocessing.
    """

    video: np.ndarray
    mfcc: np.ndarray
    text: np.ndarray
    label: np.ndarray
    group: np.ndarray
    ids: list[str]
    split: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.video = np.asarray(self.video, dtype=np.uint8)
        self.mfcc = np.asarray(self.mfcc, dtype=np.float32)
        self.text = np.asarray(self.text, dtype=np.float32)
        self.label = np.asarray(self.label, dtype=np.float32)
        self.group = np.asarray(self.group, dtype=np.int64)
        self.ids = [str(i) for i in self.ids]
        if self.split is not None:
            self.split = np.asarray(self.split, dtype=str)
        n = len(self.ids)
        if self.video.ndim != 5 or self.video.shape[-1] != 3:
            raise ValueError(f"video must be (n, T, H, W, 3) uint8; got shape {self.video.shape}")
        if self.mfcc.ndim != 3:
            raise ValueError(f"mfcc must be (n, steps, n_mfcc); got shape {self.mfcc.shape}")
        if self.text.ndim != 2:
            raise ValueError(f"text must be (n, d); got shape {self.text.shape}")
        sizes = {
            "video": len(self.video),
            "mfcc": len(self.mfcc),
            "text": len(self.text),
            "label": len(self.label),
            "group": len(self.group),
            "ids": n,
        }
        if self.split is not None:
            sizes["split"] = len(self.split)
        if len(set(sizes.values())) != 1:
            raise ValueError(f"FeatureSet arrays disagree on the number of rows: {sizes}")
        if self.label.ndim != 1 or self.group.ndim != 1:
            raise ValueError("label and group must be 1-D")
        # codes 0/1, or 0..k-1 when meta["group_labels"] names k > 2 groups
        k = max(2, len((self.meta or {}).get("group_labels") or ()))
        bad = (self.group < 0) | (self.group >= k)
        if bad.any():
            allowed = "0/1" if k == 2 else f"0..{k - 1} (meta group_labels)"
            raise ValueError(
                f"group must hold {allowed} codes; {int(bad.sum())} rows do not "
                f"(first at index {int(np.flatnonzero(bad)[0])})"
            )

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, idx: Sequence[int] | np.ndarray) -> "FeatureSet":
        """The rows ``idx`` (integer indices, in that order, or a boolean mask) as a new set."""
        idx = row_indices(idx, len(self))
        ids = [self.ids[i] for i in idx]
        return FeatureSet(
            video=self.video[idx],
            mfcc=self.mfcc[idx],
            text=self.text[idx],
            label=self.label[idx],
            group=self.group[idx],
            ids=ids,
            split=None if self.split is None else self.split[idx],
            meta=dict(self.meta),
        )

    def with_labels(self, labels: Sequence[float] | np.ndarray) -> "FeatureSet":
        """The same set with ``label`` replaced (e.g. the biased training labels Ỹ).

        Arrays are shared with ``self``, not copied.
        """
        labels = np.asarray(labels, dtype=np.float64)
        if labels.shape != (len(self),):
            raise ValueError(f"labels must have shape ({len(self)},); got {labels.shape}")
        if not np.all(np.isfinite(labels)):
            raise ValueError(f"labels hold {int((~np.isfinite(labels)).sum())} NaN/inf values")
        return dataclasses.replace(self, label=labels.astype(np.float32), meta=dict(self.meta))
