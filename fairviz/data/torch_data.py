"""Torch side of the data: a Dataset over a ``FeatureSet`` and a group-stratified batch sampler.

The sampler exists because the fairness penalties (W1, MMD, adversary) compare the two groups
*within a batch*: a batch holding one group only gives them nothing to work with.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from fairviz.data.features import FeatureSet


class InterviewDataset(Dataset):
    """Items of a ``FeatureSet`` as tensors.

    Each item is a dict:
        ``video`` float32 ``(T, 3, H, W)`` in [0, 1]; ``mfcc`` float32 ``(steps, n_mfcc)``;
        ``text`` float32 ``(d,)``; ``label`` float32 ``()``; ``group`` int64 ``()``;
        ``index`` int64 ``()`` (the row in the FeatureSet).

    Args:
        features: the FeatureSet (arrays are shared, not copied).
        labels: optional ``(n,)`` labels replacing ``features.label`` (e.g. biased training
            labels Ỹ), without touching ``features``.
    """

    def __init__(self, features: FeatureSet, labels: Sequence[float] | np.ndarray | None = None):
        self.features = features
        if labels is None:
            self.labels = features.label
        else:
            labels = np.asarray(labels, dtype=np.float32)
            if labels.shape != (len(features),):
                raise ValueError(f"labels must have shape ({len(features)},); got {labels.shape}")
            if not np.all(np.isfinite(labels)):
                raise ValueError("labels hold NaN/inf values")
            self.labels = labels

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        f = self.features
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")
        # copies: the arrays may be read-only memory maps of the feature cache
        video = torch.from_numpy(np.array(f.video[i]))  # (T, H, W, 3) uint8
        return {
            "video": video.permute(0, 3, 1, 2).float().div_(255.0),  # (T, 3, H, W)
            "mfcc": torch.from_numpy(np.array(f.mfcc[i])),
            "text": torch.from_numpy(np.array(f.text[i])),
            "label": torch.tensor(self.labels[i], dtype=torch.float32),
            "group": torch.tensor(f.group[i], dtype=torch.int64),
            "index": torch.tensor(i % len(self), dtype=torch.int64),
        }

    def batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """The items ``indices`` stacked, as a DataLoader with the default collate would give
        (``video`` ``(B, T, 3, H, W)`` etc.), without per-item overhead."""
        idx = np.asarray(indices, dtype=np.int64)
        f = self.features
        video = torch.from_numpy(np.ascontiguousarray(f.video[idx]))  # (B, T, H, W, 3)
        return {
            "video": video.permute(0, 1, 4, 2, 3).float().div_(255.0),  # (B, T, 3, H, W)
            "mfcc": torch.from_numpy(np.ascontiguousarray(f.mfcc[idx])),
            "text": torch.from_numpy(np.ascontiguousarray(f.text[idx])),
            "label": torch.from_numpy(np.ascontiguousarray(self.labels[idx], dtype=np.float32)),
            "group": torch.from_numpy(np.ascontiguousarray(f.group[idx])),
            "index": torch.from_numpy(idx % max(len(self), 1)),
        }


class GroupStratifiedBatchSampler(Sampler[list[int]]):
    """Batches of indices in which every group appears in its data proportion.

    Each group's indices are shuffled and dealt over the epoch's batches as evenly as possible,
    so a batch holds ``floor`` or ``ceil`` of ``batch_share × group_share`` items of each group
    (within one item of the exact proportion) and **at least one of every group**. Batch sizes
    differ by at most one and never exceed ``batch_size``.

    - ``drop_last=False``: ``ceil(n / batch_size)`` batches covering every index exactly once
      (sizes ``n // B`` or ``n // B + 1``).
    - ``drop_last=True``: ``n // batch_size`` batches of exactly ``batch_size``; the few left-out
      indices are drawn per epoch, in proportion to the groups.
    - A group with fewer members than there are batches has some members repeated within the
      epoch so that it is still in every batch (documented trade-off: the fairness losses need
      both groups in each batch).

    Deterministic: the order depends only on ``(seed, epoch)``; call ``set_epoch(e)`` before
    each epoch for a new order (as with ``DistributedSampler``).

    Args:
        groups: ``(n,)`` group of each item (any hashable values; usually 0/1).
        batch_size: the largest batch.
        seed: base seed.
        drop_last: see above.
    """

    def __init__(self, groups: Sequence | np.ndarray, batch_size: int, *, seed: int = 0,
                 drop_last: bool = False):
        groups = np.asarray(groups)
        if groups.ndim != 1:
            raise ValueError(f"groups must be 1-D; got shape {groups.shape}")
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        _, codes = np.unique(groups, return_inverse=True)
        self._members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)] if len(groups) else []
        self.n = len(groups)
        self._plan = self._counts()

    def set_epoch(self, epoch: int) -> None:
        """Use the order of epoch ``epoch`` for the next iteration."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._plan[0]

    def _counts(self) -> tuple[int, list[int]]:
        """(number of batches B, items drawn per group this epoch)."""
        n, bs = self.n, self.batch_size
        sizes = [len(m) for m in self._members]
        if n == 0:
            return 0, sizes
        if not self.drop_last:
            batches = math.ceil(n / bs)
            while True:
                drawn = [max(s, batches) for s in sizes]  # small groups repeated up to B
                need = math.ceil(sum(drawn) / bs)
                if need <= batches:
                    return batches, drawn
                batches = need
        batches = n // bs
        if batches == 0:
            return 0, [0] * len(sizes)
        total = batches * bs
        if len(sizes) > bs:
            raise ValueError(f"batch_size {bs} is smaller than the number of groups {len(sizes)}")
        # Largest-remainder shares of `total`, each at least one per batch.
        exact = [total * s / n for s in sizes]
        drawn = [max(math.floor(e), batches) for e in exact]
        order = sorted(range(len(sizes)), key=lambda g: exact[g] - math.floor(exact[g]), reverse=True)
        k = 0
        while sum(drawn) < total:
            drawn[order[k % len(order)]] += 1
            k += 1
        while sum(drawn) > total:  # only after raising small groups to `batches`
            g = max(range(len(sizes)), key=lambda g: drawn[g] - batches)
            drawn[g] -= 1
        return batches, drawn

    def __iter__(self) -> Iterator[list[int]]:
        batches, drawn = self._plan
        if batches == 0:
            return
        rng = np.random.default_rng([self.seed, self.epoch])
        buckets: list[list[np.ndarray]] = [[] for _ in range(batches)]
        offset = 0  # where the next group's larger shares start: spreads them over batches
        for members, m in zip(self._members, drawn):
            if m == 0:
                continue
            if m <= len(members):
                pick = rng.permutation(members)[:m]
            else:
                extra = rng.choice(members, size=m - len(members), replace=True)
                pick = rng.permutation(np.concatenate([members, extra]))
            base, extra_n = divmod(m, batches)
            counts = np.full(batches, base)
            counts[(offset + np.arange(extra_n)) % batches] += 1
            offset = (offset + extra_n) % batches
            for b, chunk in enumerate(np.split(pick, np.cumsum(counts)[:-1])):
                buckets[b].append(chunk)
        for b in rng.permutation(batches):
            batch = rng.permutation(np.concatenate(buckets[b]))
            yield batch.tolist()
