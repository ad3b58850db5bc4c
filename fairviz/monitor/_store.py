"""A monitor state as one JSON file: format name and version, an integrity hash, the settings,
the counts (little-endian int64, zlib-compressed, base64) and the history.

The hash (SHA-256 of the canonical JSON of everything else) catches a file edited by hand,
truncated or mixed up, not a deliberate forgery: anyone can recompute it. Files are written
atomically (`fairviz.atomic`), read with `json` only (never unpickled), and refused with a
one-line ValueError when damaged, edited or made with other settings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from pathlib import Path

import numpy as np

from fairviz.atomic import write_text
from fairviz.monitor._state import MonitorConfig, MonitorState

__all__ = ["FORMAT", "VERSION", "MAX_FILE_BYTES", "dumps", "loads", "save", "load", "check_settings"]

FORMAT = "fairviz-monitor-state"
VERSION = 1
MAX_FILE_BYTES = 64 << 20  # a state is at most a few MB; refuse anything far larger unread


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def _pack(a: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(a.astype("<i8").tobytes(), 6)).decode("ascii")


def _unpack(text: str, shape: tuple[int, int]) -> np.ndarray:
    want = 8 * shape[0] * shape[1]
    raw = zlib.decompressobj().decompress(base64.b64decode(text, validate=True), want + 1)  # bounded
    if len(raw) != want:
        raise ValueError("counts have the wrong size")
    a = np.frombuffer(raw, dtype="<i8").astype(np.int64)
    if a.size != shape[0] * shape[1] or (a < 0).any():
        raise ValueError("counts have the wrong size or negative values")
    return a.reshape(shape)


def dumps(state: MonitorState) -> str:
    """The state as the text of a state file."""
    body = {"config": state.config.to_dict(), "counts": _pack(state.counts), "above": _pack(state.above),
            "qualified": _pack(state.qualified), "passed": _pack(state.passed),
            "updates": state.updates, "alarms": state.alarms, "history": state.history}
    return json.dumps({"format": FORMAT, "version": VERSION, "sha256": hashlib.sha256(_canonical(body)).hexdigest(),
                       "state": body}, ensure_ascii=False, allow_nan=False) + "\n"


def loads(text: str, source: str = "the state file") -> MonitorState:
    """A state from the text of a state file; ValueError (one line) if it is not one, was made by
    a newer fairviz, was modified, or is damaged."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ValueError(f"{source} is not a fairviz monitor state (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{source} is not a fairviz monitor state (no '{FORMAT}' format tag)")
    if doc.get("version") != VERSION:
        raise ValueError(f"{source} has state format version {doc.get('version')!r}; this fairviz reads version "
                         f"{VERSION} (upgrade fairviz, or start a new state)")
    body = doc.get("state")
    try:
        intact = isinstance(body, dict) and hashlib.sha256(_canonical(body)).hexdigest() == doc.get("sha256")
    except (TypeError, ValueError):
        intact = False
    if not intact:
        raise ValueError(f"{source} was modified or damaged (its integrity hash does not match its content); "
                         "restore it from a backup or start a new state")
    try:
        config = MonitorConfig(**{k: body["config"][k] for k in ("groups", "epsilon", "alpha", "taus", "bits", "eo_taus")})
        k, m, m_eo = len(config.groups), len(config.taus), len(config.eo_taus)
        state = MonitorState(config, _unpack(body["counts"], (k, config.bins + 1)), _unpack(body["above"], (k, m)),
                             int(body["updates"]), dict(body["alarms"]), list(body["history"]),
                             _unpack(body["qualified"], (k, m_eo)), _unpack(body["passed"], (k, m_eo)))
    except (KeyError, TypeError, ValueError, zlib.error, OverflowError) as err:
        raise ValueError(f"{source} is damaged ({err})") from None
    if (state.above > state.counts.sum(axis=1, keepdims=True)).any() or (state.passed > state.qualified).any():
        raise ValueError(f"{source} is damaged (more rows above a threshold than rows)")
    return state


def save(state: MonitorState, path) -> Path:
    """Write the state to `path` atomically (a reader sees the old or the new file)."""
    return write_text(path, dumps(state))


def load(path) -> MonitorState:
    """Read a state file (see `loads`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such state file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a state file (e.g. monitor-state.json)")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path.name} is larger than any monitor state ({path.stat().st_size} bytes)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path.name} is not a fairviz monitor state (not UTF-8 text)") from None
    return loads(text, path.name)


def check_settings(state: MonitorState, source: str = "the state", **wanted) -> None:
    """ValueError if any given setting (groups, epsilon, alpha, taus, bits, eo_taus; None = not given)
    differs from the state's: a state's settings are fixed when it is created."""
    have = state.config.to_dict()
    for key, value in wanted.items():
        if value is None:
            continue
        want = MonitorConfig(**{**have, key: value}).to_dict()[key]  # normalised like the stored one
        same = sorted(want) == sorted(have[key]) if key == "groups" else want == have[key]
        if not same:
            raise ValueError(
                f"{source} was created with {key} {have[key]!r}, not {want!r}; a state's settings are fixed "
                "when it is created (changing them after seeing data voids the error guarantee): "
                f"omit the option or start a new state file")
