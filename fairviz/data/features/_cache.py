"""The on-disk feature cache: key, folder, atomic write, checked read, streaming writer."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import numpy as np

from fairviz.atomic import MARKER, TMP_PREFIX, staged_dir
from fairviz.data import feature_store as store
from fairviz.data.feature_store import CacheError
from fairviz.data.features._featureset import ARRAY_FIELDS, FEATURE_FORMAT_VERSION, FeatureSet, Progress
from fairviz.paths import cache_dir

# the package's logger: a damaged cache is reported as coming from fairviz.data.features
log = logging.getLogger("fairviz.data.features")


def _jsonable(obj):
    """``obj`` made JSON-serialisable (numpy scalars/arrays, tuples, Paths)."""
    return json.loads(json.dumps(obj, default=_json_default, sort_keys=True))


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (Path, os.PathLike)):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def cache_key(material: dict) -> str:
    """SHA-256 hex digest of ``material`` as canonical JSON (the format version is added)."""
    doc = {"format": FEATURE_FORMAT_VERSION, **material}
    text = json.dumps(doc, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def feature_cache_path(source: str, key: str) -> Path:
    """The cache folder for ``source`` ("synthetic", "manifest") and a ``cache_key``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in source)
    return cache_dir() / "features" / f"{safe}-{key[:24]}"


def _cache_arrays(features: FeatureSet) -> dict[str, np.ndarray]:
    """The arrays of ``features`` as they are stored (ids and split as fixed-width str)."""
    arrays = {name: getattr(features, name) for name in ARRAY_FIELDS}
    arrays["ids"] = np.asarray(features.ids, dtype=str)
    if features.split is not None:
        arrays["split"] = np.asarray(features.split, dtype=str)
    return arrays


def _write_cache_files(folder: Path, features: FeatureSet, key: str, material: dict,
                       written: dict | None = None) -> None:
    """Write the arrays not already in ``written`` and ``meta.json`` into ``folder``."""
    specs = dict(written or {})
    for name, arr in _cache_arrays(features).items():
        if name not in specs:
            specs[name] = store.write_array(folder / f"{name}.npy", arr)
    doc = {
        "format": FEATURE_FORMAT_VERSION,
        "key": key,
        "material": _jsonable(material),
        "arrays": specs,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "meta": _jsonable(features.meta),
    }
    with open(folder / "meta.json", "w", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, indent=1, sort_keys=True))
        fh.flush()
        os.fsync(fh.fileno())


def save_feature_cache(path: Path, features: FeatureSet, key: str, material: dict) -> Path:
    """Write ``features`` to the cache folder ``path`` atomically (staged folder + rename)."""
    _remove_stale_staging(path)
    with staged_dir(path, replace=True) as tmp:
        _write_cache_files(tmp, features, key, material)
    return path


def _remove_stale_staging(path: Path, max_age_s: float = 24 * 3600) -> None:
    """Delete staging folders of ``path`` left behind by a killed writer (older than a day)."""
    if not path.parent.is_dir():
        return
    now = time.time()
    for p in path.parent.glob(f"{TMP_PREFIX}{path.name}.*"):
        try:  # only staging folders of fairviz's own (the marker inside), never a link
            if (p.is_dir() and not p.is_symlink() and (p / MARKER).is_file()
                    and now - p.stat().st_mtime > max_age_s):
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def load_feature_cache(path: Path, key: str, *, mmap: bool = False) -> FeatureSet:
    """Read a cache folder written by ``save_feature_cache``; CacheError if it is not sound.

    ``mmap=True`` leaves ``video``, ``mfcc`` and ``text`` as read-only memory maps of the cache
    files (see ``fairviz.data.feature_store``); the values are the same either way.
    """
    doc = store.read_meta(path)
    if doc.get("format") != FEATURE_FORMAT_VERSION or doc.get("key") != key:
        raise CacheError("format version or key does not match")
    expected = doc["arrays"]
    names = set(ARRAY_FIELDS) | {"ids"}
    if not names <= set(expected) <= names | {"split"}:
        raise CacheError(f"meta.json lists arrays {sorted(expected)}, expected {sorted(names)}")
    small = {k: v for k, v in expected.items() if k not in ("video", "mfcc", "text")}
    arrays = store.read_arrays(path, small)
    arrays.update(store.read_arrays(path, {k: expected[k] for k in ("video", "mfcc", "text")},
                                    mmap=mmap))
    try:
        return FeatureSet(
            video=arrays["video"], mfcc=arrays["mfcc"], text=arrays["text"],
            label=arrays["label"], group=arrays["group"], ids=arrays["ids"].tolist(),
            split=arrays.get("split"), meta=doc.get("meta") or {},
        )
    except (KeyError, ValueError) as err:
        raise CacheError(f"cached arrays are inconsistent: {err}") from err


class FeatureWriter:
    """Given to a feature builder: streams large arrays straight into the cache folder being
    built, so they never sit whole in memory.

    ``rows(name, dtype, row_shape)`` opens a ``RowWriter`` for ``<name>.npy``; ``finish(name)``
    closes it and returns the array memory-mapped, to put into the returned FeatureSet (which
    is then not written again).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.written: dict[str, dict] = {}
        self._open: dict[str, store.RowWriter] = {}

    def rows(self, name: str, dtype, row_shape: tuple, max_rows: int = 10**12) -> store.RowWriter:
        if name not in (*ARRAY_FIELDS, "ids", "split"):
            raise ValueError(f"{name!r} is not a cached array")
        self._open[name] = store.RowWriter(self.folder / f"{name}.npy", dtype, row_shape, max_rows)
        return self._open[name]

    def finish(self, name: str) -> np.ndarray:
        writer = self._open.pop(name)
        self.written[name] = writer.close()
        if writer.rows == 0:  # an empty region cannot be mapped
            return np.load(writer.path, allow_pickle=False)
        return np.load(writer.path, mmap_mode="r", allow_pickle=False)  # checked when read back

    def abort(self) -> None:
        for writer in self._open.values():
            writer.abort()
        self._open.clear()


def cached_features(
    source: str,
    material: dict,
    build: Callable[[FeatureWriter], FeatureSet],
    *,
    refresh: bool = False,
    progress: Progress | None = None,
    mmap: bool = False,
) -> FeatureSet:
    """Load the feature set for ``material`` from the cache, or ``build(writer)`` and cache it.

    ``build`` gets a ``FeatureWriter`` it may use to stream large arrays into the cache. A
    cache folder that cannot be trusted is logged (warning) and rebuilt. A built set is read
    back from its cache folder, so a hit and a miss return the same arrays, memory-mapped when
    ``mmap``. The returned set's ``meta`` gains ``cache_path`` and ``cache_hit``.
    """
    key = cache_key(material)
    path = feature_cache_path(source, key)
    if path.exists() and not refresh:
        if progress is not None:
            progress(0, 1, "cache")
        try:
            features = load_feature_cache(path, key, mmap=mmap)
        except CacheError as err:
            log.warning("feature cache %s is damaged (%s); rebuilding it", path, err)
        else:
            if progress is not None:
                progress(1, 1, "cache")
            features.meta.update(cache_path=str(path), cache_hit=True)
            return features
    _remove_stale_staging(path)
    with staged_dir(path, replace=True) as tmp:
        writer = FeatureWriter(tmp)
        try:
            built = build(writer)
        finally:
            writer.abort()
        if progress is not None:
            progress(0, 1, "cache")
        _write_cache_files(tmp, built, key, material, writer.written)
        del built  # may map files of the staging folder
    features = load_feature_cache(path, key, mmap=mmap)
    if progress is not None:
        progress(1, 1, "cache")
    features.meta.update(cache_path=str(path), cache_hit=False)
    return features
