"""Batches of model inputs for training and scoring, read row by row from in-memory or
memory-mapped feature arrays.

The video frames are the only large array: they stay where they are (RAM or a memory-mapped
cache file, see ``fairviz.data.feature_store``) and each batch copies out just its rows. The
values are the same either way, so a memory-mapped cache trains exactly like one held in RAM.

On a CUDA device ``iter_batches`` prepares the next batches on a background thread in pinned
(page-locked) host memory and copies them with ``non_blocking=True``, so reading the disk
overlaps the GPU's work; on a CPU it reads each batch when it is needed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Sequence

import numpy as np
import torch

from fairviz.data.feature_store import take_rows

#: Batches a CUDA run prepares ahead of the one being trained on.
PREFETCH = 2

Inputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def host_batch(video, mfcc: torch.Tensor, text: torch.Tensor, rows, *, pin: bool = False) -> Inputs:
    """Rows ``rows`` on the host: (video uint8 ``(B, T, H, W, 3)``, mfcc ``(B, steps, n_mfcc)``,
    text ``(B, d)``); ``video`` is a numpy array (in memory or memory-mapped), mfcc and text
    are CPU tensors. ``pin`` puts them in page-locked memory (for asynchronous GPU copies)."""
    idx = np.asarray(rows, dtype=np.int64)
    out = (torch.from_numpy(take_rows(video, idx)), mfcc[torch.from_numpy(idx)],
           text[torch.from_numpy(idx)])
    return tuple(t.pin_memory() for t in out) if pin else out


def to_device(host: Inputs, device: torch.device) -> Inputs:
    """Model inputs on ``device``: video float ``(B, T, 3, H, W)`` in [0, 1] (frozen frame
    features: float ``(B, T, dim)``), mfcc, text."""
    video, mfcc, text = (t.to(device, non_blocking=True) for t in host)
    if video.dtype != torch.uint8:  # cached frame features of a frozen backbone
        return video.float(), mfcc, text
    return video.permute(0, 1, 4, 2, 3).float().div_(255.0), mfcc, text


def iter_batches(video, mfcc: torch.Tensor, text: torch.Tensor, row_batches: Sequence,
                 device: torch.device) -> Iterator[Inputs]:
    """``to_device(host_batch(...))`` for each entry of ``row_batches``, in order.

    On CUDA, up to ``PREFETCH`` batches are read ahead on one background thread into pinned
    memory (the thread only reads and copies on the host; the GPU copies are issued here).
    """
    if device.type != "cuda":
        for rows in row_batches:
            yield to_device(host_batch(video, mfcc, text, rows), device)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fairviz-prefetch")
    try:
        pending = [pool.submit(host_batch, video, mfcc, text, rows, pin=True)
                   for rows in row_batches[:PREFETCH]]
        for i in range(len(row_batches)):
            host = pending.pop(0).result()
            if i + PREFETCH < len(row_batches):
                pending.append(pool.submit(host_batch, video, mfcc, text,
                                           row_batches[i + PREFETCH], pin=True))
            yield to_device(host, device)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
