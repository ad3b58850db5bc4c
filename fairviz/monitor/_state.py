"""The streaming state: per-group score counts on a fixed grid, updated batch by batch.

Memory and file size are bounded by the grid, not by the stream: (k groups) × (2^bits + 1)
int64 counts (default bits = 16: 512 KiB per group in memory, far less in the file, which stores
them zlib-compressed), k × (number of τ) exact counts above each τ, and at most `HISTORY_MAX`
one-line summaries of past updates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fairviz.jsonsafe import json_float
from fairviz.monitor import _bounds

__all__ = ["HISTORY_MAX", "MAX_GROUPS", "MonitorConfig", "MonitorState", "Gap"]

HISTORY_MAX = 10_000  # summaries kept (oldest dropped first); the first alarm is kept apart
MAX_GROUPS = 64  # k × 2^bits counts are kept in memory; more groups is usually the wrong column
MAX_COUNTS = 1 << 23  # k × 2^bits at most (64 MiB of counts)


@dataclass(frozen=True)
class MonitorConfig:
    """What a state monitors; fixed when the state is created (changing ε, α or τ after seeing
    the data would void the error guarantee).

    groups: every group name (as text), fixing the α split (α/k per group); epsilon: the
    tolerated gap ε in H0 "gap ≤ ε"; alpha: the chance of any false alarm, over all times and
    all monitored gaps together; taus: thresholds whose selection-rate gap DP(τ) is monitored
    too; eo_taus: thresholds whose equal-opportunity gap EO(τ) (the gap in P(score > τ | label > τ)
    over labelled rows) is monitored; bits: the score grid has 2^bits cells (SPDD's grid error
    ≤ k·2^-bits, ≤ 2^-bits for 2 groups).
    """

    groups: tuple[str, ...]
    epsilon: float = 0.05
    alpha: float = 0.05
    taus: tuple[float, ...] = ()
    bits: int = 16
    eo_taus: tuple[float, ...] = ()

    def __post_init__(self):
        groups = tuple(str(g) for g in self.groups)
        object.__setattr__(self, "groups", groups)
        object.__setattr__(self, "taus", tuple(float(t) for t in self.taus))
        object.__setattr__(self, "eo_taus", tuple(float(t) for t in self.eo_taus))
        if len(groups) < 2:
            raise ValueError(f"a monitor needs two or more groups; got {len(groups)}: {list(groups)}")
        if len(groups) > MAX_GROUPS:
            raise ValueError(f"a monitor takes at most {MAX_GROUPS} groups; got {len(groups)} "
                             "(is the group column the right one?)")
        if len(set(groups)) != len(groups):
            raise ValueError(f"group names repeat: {list(groups)}")
        if not (isinstance(self.epsilon, (int, float)) and 0.0 <= self.epsilon < 1.0):
            raise ValueError(f"epsilon must be in [0, 1), e.g. 0.05; got {self.epsilon!r}")
        if not (isinstance(self.alpha, (int, float)) and 0.0 < self.alpha < 1.0):
            raise ValueError(f"alpha must be in (0, 1), e.g. 0.05; got {self.alpha!r}")
        for taus in (self.taus, self.eo_taus):
            for t in taus:
                if not (math.isfinite(t) and 0.0 <= t < 1.0):
                    raise ValueError(f"every tau must be in [0, 1); got {t!r}")
            if len(set(taus)) != len(taus):
                raise ValueError(f"thresholds repeat: {list(taus)}")
        if not (isinstance(self.bits, int) and 4 <= self.bits <= 20):
            raise ValueError(f"bits must be an integer from 4 to 20; got {self.bits!r}")
        if len(groups) << self.bits > MAX_COUNTS:
            raise ValueError(f"{len(groups)} groups on a grid of 2^{self.bits} cells is more than "
                             f"{MAX_COUNTS:,} counts; use fewer bits")

    @property
    def bins(self) -> int:
        return 1 << self.bits

    @property
    def family_alpha(self) -> float:
        """α of each family of per-group bands: the scores' (SPDD and every DP(τ)) and one per
        EO(τ) (its own rows, the labelled qualified ones); the union bound over families keeps α."""
        return self.alpha / (1 + len(self.eo_taus))

    @property
    def grid_error(self) -> float:
        """Largest difference between the binned and the exact SPDD of the same rows."""
        k = len(self.groups)
        return (1.0 if k == 2 else float(k)) / self.bins

    def to_dict(self) -> dict:
        return {"groups": list(self.groups), "epsilon": self.epsilon, "alpha": self.alpha,
                "taus": list(self.taus), "bits": self.bits, "eo_taus": list(self.eo_taus)}


@dataclass(frozen=True)
class Gap:
    """One monitored gap now: its estimate, its anytime-valid confidence sequence [low, high]
    (level 1 − α jointly with every other gap of the state), whether H0 "gap ≤ ε" is rejected
    now (low > ε), and whether the naive fixed-sample test at level α would reject now."""

    name: str
    value: float | None
    low: float
    high: float
    rejected: bool
    fixed_rejects: bool

    def to_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "low": self.low, "high": self.high,
                "rejected": self.rejected, "fixed_rejects": self.fixed_rejects}


@dataclass
class MonitorState:
    """Counts of all rows seen so far; `update` adds a batch, `gaps` reads the current answer.

    counts: (k, 2^bits + 1) int64 (bin 0: score 0; bin b: ((b−1)/2^bits, b/2^bits]);
    above: (k, len(taus)) int64, rows with score > τ; alarms: gap name → where H0 was first
    rejected ({"update", "n", "time"}); history: one summary per update (newest last);
    qualified, passed: (k, len(eo_taus)) int64, labelled rows with label > τ, and those of them
    with score > τ.
    """

    config: MonitorConfig
    counts: np.ndarray = None
    above: np.ndarray = None
    updates: int = 0
    alarms: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    qualified: np.ndarray = None
    passed: np.ndarray = None

    def __post_init__(self):
        k = len(self.config.groups)
        if self.counts is None:
            self.counts = np.zeros((k, self.config.bins + 1), dtype=np.int64)
        if self.above is None:
            self.above = np.zeros((k, len(self.config.taus)), dtype=np.int64)
        for name in ("qualified", "passed"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros((k, len(self.config.eo_taus)), dtype=np.int64))

    # ----------------------------------------------------------------------------- reading
    @property
    def group_counts(self) -> dict[str, int]:
        return dict(zip(self.config.groups, (int(v) for v in self.counts.sum(axis=1))))

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    @property
    def rejected(self) -> bool:
        """Whether H0 was rejected for any monitored gap at any update so far (it stays so)."""
        return bool(self.alarms)

    def spdd(self) -> float | None:
        """SPDD of all rows seen so far (binned; within `config.grid_error` of the exact one);
        None while fewer than two groups have rows."""
        t, n = _bounds.survival(self.counts)
        return json_float(_bounds.spdd_estimate(t, n))

    def gaps(self) -> list[Gap]:
        """SPDD, DP(τ) and EO(τ) at each of their thresholds, with confidence sequences and tests."""
        cfg = self.config
        t, n = _bounds.survival(self.counts)
        lo, hi = _bounds.spdd_bounds(t, n, cfg.family_alpha)
        zc = _bounds.z_critical(cfg.alpha)
        z = _bounds.fixed_spdd_z(self.counts, cfg.epsilon)
        out = [Gap("SPDD", json_float(_bounds.spdd_estimate(t, n)), float(lo), float(hi),
                   bool(lo > cfg.epsilon), bool(z > zc))]
        for name, taus, hits, rows in (("DP", cfg.taus, self.above, n), ("EO", cfg.eo_taus, self.passed, self.qualified)):
            if not taus:
                continue
            est, rlo, rhi = _bounds.rate_gap(hits, rows, cfg.family_alpha)
            rz = _bounds.fixed_rate_z(hits, rows, cfg.epsilon)
            for i, tau in enumerate(taus):
                out.append(Gap(f"{name}({tau:g})", json_float(est[i]), float(rlo[i]), float(rhi[i]),
                               bool(rlo[i] > cfg.epsilon), bool(rz[i] > zc)))
        return out

    # ----------------------------------------------------------------------------- writing
    def _codes(self, groups) -> np.ndarray:
        codes, raw = pd.factorize(np.asarray(groups), sort=False)  # hashing, then text per distinct value
        if (codes < 0).any():
            raise ValueError(f"group values are missing in {int((codes < 0).sum())} row(s) "
                             f"(first at row {int(np.flatnonzero(codes < 0)[0])})")
        uniques = [str(u) for u in raw]
        if len(set(uniques)) != len(uniques):  # e.g. 1 and "1": one name in the state file
            same = next(u for u in uniques if uniques.count(u) > 1)
            raise ValueError(f"different group values are written the same way ({same!r}); "
                             "make the group column hold one type")
        index = {g: i for i, g in enumerate(self.config.groups)}
        unknown = [u for u in uniques if u not in index]
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5]) + (" …" if len(unknown) > 5 else "")
            raise ValueError(
                f"group(s) {shown} not among this state's groups ({', '.join(map(repr, self.config.groups))}); "
                "a state's groups are fixed when it is created (they set the error split): "
                "start a new state listing every group with --groups")
        return np.array([index[u] for u in uniques], dtype=np.int64)[codes]

    def update(self, scores, groups, labels=None, *, time=None, labels_only: bool = False) -> list[Gap]:
        """Add a batch: scores (n,) in [0, 1], groups (n,) (compared as text), labels (n,) in
        [0, 1] or NaN where not known yet (used by EO(τ) only). A batch may hold any subset of
        the groups, or be empty. ``labels_only=True``: these rows were added before, without
        their labels; count their labels only. Records the gaps (and any first alarm) in the
        history and returns them. Nothing changes if the batch is invalid (ValueError)."""
        x = np.asarray(scores, dtype=np.float64).reshape(-1)
        y = self._labels(labels, len(x), labels_only)
        if len(np.asarray(groups).reshape(-1)) != len(x):
            raise ValueError(f"scores and groups differ in length ({len(x)} vs {len(np.asarray(groups).reshape(-1))})")
        if not np.all((x >= 0.0) & (x <= 1.0)):  # also catches NaN
            bad = int(np.flatnonzero(~((x >= 0.0) & (x <= 1.0)))[0])
            raise ValueError(f"scores must be numbers in [0, 1]; row {bad} has {x[bad]!r}")
        codes = self._codes(np.asarray(groups).reshape(-1)) if len(x) else np.zeros(0, np.int64)
        k = len(self.config.groups)
        for i, tau in enumerate(self.config.eo_taus):
            ok = y > tau  # NaN (no label yet) is never > τ
            self.qualified[:, i] += np.bincount(codes[ok], minlength=k)
            self.passed[:, i] += np.bincount(codes[ok & (x > tau)], minlength=k)
        if not labels_only:
            bins = self.config.bins
            # x·2^bits is exact in binary floating point, so ceil puts a score equal to j/2^bits in bin j
            cell = np.ceil(x * bins).astype(np.int64)
            self.counts += np.bincount(codes * (bins + 1) + cell, minlength=k * (bins + 1)).reshape(k, bins + 1)
            for i, tau in enumerate(self.config.taus):
                self.above[:, i] += np.bincount(codes[x > tau], minlength=k)
        self.updates += 1
        return self._record(time)

    def _labels(self, labels, n: int, labels_only: bool) -> np.ndarray:
        """Labels as float64 (n,), NaN = not known; checked before anything changes."""
        if labels is None:
            if labels_only:
                raise ValueError("a labels-only batch needs a label column")
            return np.full(n, np.nan)
        y = np.asarray(labels, dtype=np.float64).reshape(-1)
        if len(y) != n:
            raise ValueError(f"scores and labels differ in length ({n} vs {len(y)})")
        bad = ~np.isnan(y) & ~((y >= 0.0) & (y <= 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"labels must be numbers in [0, 1] (or empty if not known yet); row {i} has {y[i]!r}")
        if labels_only and not self.config.eo_taus:
            raise ValueError("this state monitors no label-based gap (no EO threshold), so a labels-only batch "
                             "would change nothing")
        return y

    def _record(self, time) -> list[Gap]:
        gaps = self.gaps()
        n = self.n
        stamp = None if time is None else str(time)
        for g in gaps:
            if g.rejected and g.name not in self.alarms:
                self.alarms[g.name] = {"update": self.updates, "n": n, "time": stamp}
        self.history.append({"update": self.updates, "n": n, "time": stamp,
                             "groups": self.group_counts, "gaps": [g.to_dict() for g in gaps]})
        del self.history[:-HISTORY_MAX]
        return gaps

    def history_frame(self) -> pd.DataFrame:
        """The history as a long table: one row per (update, gap) with columns update, n, time,
        gap, value, low, high, rejected, fixed_rejects, alarm (H0 rejected at or before)."""
        rows = []
        for h in self.history:
            for g in h["gaps"]:
                first = self.alarms.get(g["name"])
                rows.append({"update": h["update"], "n": h["n"], "time": h["time"], "gap": g["name"],
                             "value": g["value"], "low": g["low"], "high": g["high"],
                             "rejected": g["rejected"], "fixed_rejects": g["fixed_rejects"],
                             "alarm": first is not None and h["update"] >= first["update"]})
        cols = ["update", "n", "time", "gap", "value", "low", "high", "rejected", "fixed_rejects", "alarm"]
        return pd.DataFrame(rows, columns=cols)
