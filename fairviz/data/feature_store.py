"""The on-disk layout of a feature cache: one ``.npy`` file per array, written row by row and
read either whole or memory-mapped.

A cache folder holds ``meta.json`` and ``<name>.npy`` for each of ``video``, ``mfcc``, ``text``,
``label``, ``group``, ``ids`` and (when the source fixes one) ``split``. ``meta.json`` lists, per
array, its shape, dtype, file size in bytes and the CRC-32 of its data (the bytes after the
``.npy`` header); ``read_arrays``
checks all four before anything is returned, so a truncated, padded or bit-flipped file is
reported (``CacheError``) and rebuilt rather than loaded.

Why per-array files: at 30 frames of 112×112 one clip is 1.1 MB of frames, so a corpus of
10,000 clips does not fit in RAM. ``RowWriter`` appends rows to a ``.npy`` with plain file writes
(memory use is one chunk), and ``read_arrays(..., mmap=True)`` maps the files read-only, so the
training loader copies out only the rows of each batch (``take_rows``). ``.npy`` files are read
with ``allow_pickle=False``: string arrays (ids, split) are fixed-width unicode, never objects.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import zlib
from pathlib import Path

import numpy as np

#: Bytes of every ``.npy`` header written here (fixed, so the row count can be set at the end).
_HEADER_BYTES = 128
_MAGIC = b"\x93NUMPY\x01\x00"
_CHUNK = 16 << 20  # bytes per read/write when checksumming or copying


class CacheError(Exception):
    """A cache folder that exists but cannot be trusted (it is rebuilt)."""


def _npy_header(dtype: np.dtype, shape: tuple, length: int = _HEADER_BYTES) -> bytes:
    """A version-1.0 ``.npy`` header of exactly ``length`` bytes (spaces pad it, as numpy does)."""
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (
        np.lib.format.dtype_to_descr(np.dtype(dtype)), tuple(int(s) for s in shape))
    body_len = length - len(_MAGIC) - 2
    if len(text) + 1 > body_len:
        raise ValueError(f"shape {shape} does not fit a {length}-byte .npy header")
    body = text.ljust(body_len - 1) + "\n"
    return _MAGIC + struct.pack("<H", body_len) + body.encode("latin1")


def _header_length(dtype: np.dtype, row_shape: tuple, max_rows: int) -> int:
    """The header size for the largest shape this writer may end with, a multiple of 64."""
    need = len(_npy_header(dtype, (max_rows, *row_shape), 1 << 12).rstrip(b" \n")) + 1
    return max(_HEADER_BYTES, -(-need // 64) * 64)


class RowWriter:
    """Appends rows of one array to a ``.npy`` file; the row count is written by ``close()``.

    Args:
        path: the file to create.
        dtype: element type; ``row_shape``: shape of one row (e.g. ``(T, H, W, 3)``).
        max_rows: an upper bound on the rows (it sizes the header; default 10^12).

    Memory use is what ``append`` is given; the CRC-32 of the file is kept as it is written.
    """

    def __init__(self, path: Path, dtype, row_shape: tuple, max_rows: int = 10**12):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(int(s) for s in row_shape)
        self.rows = 0
        self._header_len = _header_length(self.dtype, self.row_shape, max_rows)
        self._fh = open(self.path, "wb")
        self._fh.write(b"\0" * self._header_len)  # the real header is written by close()
        self._crc_body = 0

    def append(self, rows: np.ndarray) -> None:
        """Write ``rows`` (``(k, *row_shape)``, cast to the writer's dtype)."""
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise ValueError(f"rows of shape {rows.shape[1:]} given to a writer of rows {self.row_shape}")
        data = _bytes_view(rows)
        self._fh.write(data)
        self._crc_body = zlib.crc32(data, self._crc_body)
        self.rows += len(rows)

    def close(self) -> dict:
        """Write the header, flush to disk; returns the ``meta.json`` entry of the file."""
        header = _npy_header(self.dtype, (self.rows, *self.row_shape), self._header_len)
        self._fh.seek(0)
        self._fh.write(header)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return {
            "shape": [self.rows, *self.row_shape],
            "dtype": self.dtype.str,
            "bytes": self.path.stat().st_size,
            "data_crc32": self._crc_body,  # of the bytes after the header
        }

    def abort(self) -> None:
        """Close without finishing (the staging folder holding the file is discarded)."""
        self._fh.close()


def _bytes_view(arr: np.ndarray) -> np.ndarray:
    """The bytes of a C-contiguous array as a flat uint8 view (no copy; works for str dtypes)."""
    return np.ascontiguousarray(arr).reshape(-1).view(np.uint8)


def write_array(path: Path, arr: np.ndarray) -> dict:
    """Write ``arr`` (n, ...) to a ``.npy`` at ``path`` in chunks; its ``meta.json`` entry."""
    arr = np.asarray(arr)
    writer = RowWriter(path, arr.dtype, arr.shape[1:], max_rows=max(len(arr), 1))
    step = max(1, _CHUNK // max(1, arr[:1].nbytes))
    for start in range(0, len(arr), step):
        writer.append(arr[start:start + step])
    return writer.close()


def read_arrays(folder: Path, expected: dict, *, mmap: bool = False) -> dict[str, np.ndarray]:
    """The arrays of a cache folder, each checked against its ``meta.json`` entry.

    ``expected`` maps names to ``{"shape", "dtype", "bytes", "data_crc32"}``. With ``mmap`` the
    arrays are read-only memory maps (the CRC is computed by reading the file in chunks, which
    leaves it in the page cache but not in this process's memory); without, they are loaded.
    Raises CacheError naming the first file that is missing or does not match.
    """
    out = {}
    for name, spec in expected.items():
        path = Path(folder) / f"{name}.npy"
        try:
            out[name] = _read_checked(path, spec, mmap=mmap)
        except CacheError:
            raise
        except Exception as err:  # OSError, ValueError from a damaged header, ...
            raise CacheError(f"{path.name} is unreadable: {type(err).__name__}: {err}") from err
    return out


def _read_checked(path: Path, spec: dict, *, mmap: bool) -> np.ndarray:
    if not path.is_file():
        raise CacheError(f"{path.name} is missing")
    size = path.stat().st_size
    if size != spec.get("bytes"):
        raise CacheError(f"{path.name} has {size} bytes, expected {spec.get('bytes')}")
    with open(path, "rb") as fh:
        version = np.lib.format.read_magic(fh)
        if version != (1, 0):
            raise CacheError(f"{path.name} is .npy version {version}, expected 1.0")
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        if fortran or list(shape) != spec.get("shape") or dtype.str != spec.get("dtype"):
            raise CacheError(f"{path.name} holds {list(shape)} {dtype.str}, expected "
                             f"{spec.get('shape')} {spec.get('dtype')}")
        if dtype.hasobject:
            raise CacheError(f"{path.name} holds Python objects")
        offset = fh.tell()
        if mmap:
            crc = 0
            for block in iter(lambda: fh.read(_CHUNK), b""):
                crc = zlib.crc32(block, crc)
    if mmap and shape[0] > 0:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    else:
        arr = np.load(path, allow_pickle=False)
        if arr.nbytes + offset != size:
            raise CacheError(f"{path.name} does not hold what its header says")
        crc = zlib.crc32(_bytes_view(arr))
    if crc != spec.get("data_crc32"):
        raise CacheError(f"{path.name} fails its CRC-32 check (damaged)")
    return arr


def read_meta(folder: Path) -> dict:
    """``meta.json`` of a cache folder as a dict (CacheError when missing or not JSON)."""
    meta_file = Path(folder) / "meta.json"
    if not meta_file.is_file():
        raise CacheError("meta.json is missing")
    try:
        doc = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CacheError(f"meta.json is unreadable: {err}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("arrays"), dict):
        raise CacheError("meta.json does not list the arrays")
    return doc


# --------------------------------------------------------------------------------------------
# Reading batches


def _mapping(arr: np.ndarray) -> mmap.mmap | None:
    """The ``mmap`` object behind ``arr`` (following views), or None for an in-memory array."""
    base = arr
    while base is not None:
        if isinstance(base, mmap.mmap):
            return base
        base = getattr(base, "base", None)
    return None


def is_mapped(arr) -> bool:
    """True when ``arr`` is a view of a memory-mapped file."""
    return isinstance(arr, np.ndarray) and _mapping(arr) is not None


def take_rows(arr: np.ndarray, idx) -> np.ndarray:
    """``arr[idx]`` as a new in-memory array, for in-memory and memory-mapped ``arr`` alike.

    For a memory-mapped ``arr`` the pages just read are handed back to the kernel afterwards
    (``MADV_DONTNEED``; they stay in the page cache), so reading a whole epoch does not leave
    the file resident in this process: its memory holds one batch, not the data set.
    """
    rows = np.take(arr, np.asarray(idx, dtype=np.int64), axis=0)
    mapping = _mapping(arr)
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)
    return rows
