"""Small files that expand to huge tables ("memory bombs"), for the size-limit tests and
bench/bench_bombs.py. Both are written piece by piece, so making them needs little memory."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

BOMB_ROWS = 100_000_000


def parquet_bomb(path: Path, rows: int = BOMB_ROWS, per_group: int = 1_000_000) -> Path:
    """A Parquet file of ``rows`` rows (score 0.5; group "A" then "B" in each row group): about
    1 MB on disk, gigabytes once loaded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    half = per_group // 2
    table = pa.table({
        "score": pa.array(np.full(per_group, 0.5)),
        "group": pa.array(["A"] * half + ["B"] * (per_group - half)).dictionary_encode(),
    })
    with pq.ParquetWriter(path, table.schema, compression="zstd") as w:
        for _ in range(rows // per_group):
            w.write_table(table, row_group_size=per_group)
    return path


def csv_gz_bomb(path: Path, rows: int = BOMB_ROWS) -> Path:
    """A gzip-compressed CSV of ``rows`` rows ``0.5,A`` / ``0.5,B`` (about 0.6 MB on disk,
    600 MB once decompressed)."""
    block_rows = 1_000_000
    block = b"0.5,A\n0.5,B\n" * (block_rows // 2)
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    with open(path, "wb") as fh:
        fh.write(comp.compress(b"score,group\n"))
        for _ in range(rows // block_rows):
            fh.write(comp.compress(block))
        fh.write(comp.flush())
    return path
