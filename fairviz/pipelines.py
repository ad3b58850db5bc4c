"""Which pipeline wins: every run and every run + repair as points on one fairness/accuracy plane.

A *pipeline* is a trained method at some weight (its knob: λ_W for ours, λ for l2 / mmd), or a
trained run followed by the barycenter repair at strength θ (`fairviz.postprocess`, fitted on the
run's validation rows). `pipeline_points` lists them all for the runs of one α and bias mode;
`mark_front` marks the Pareto front over all of them (lower SPDD, higher PCC); `flag_spread`
compares every point's test score spread with vanilla's, because a collapsed (near-constant)
score has a tiny SPDD without being fair in any useful sense; `best_pipeline` names the most
accurate pipeline whose SPDD is at most what the user accepts and whose spread is kept.

Pure pandas / numpy (no Streamlit); the Trade-off page draws what these return.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fairviz import postprocess
from fairviz.figures import pareto_front
from fairviz.methods import WEIGHT_FIELDS
from fairviz.runs import read_run_config

__all__ = [
    "POINT_COLUMNS",
    "COLLAPSE_RATIO",
    "NARROW_RATIO",
    "pipeline_points",
    "mark_front",
    "flag_spread",
    "best_pipeline",
    "repaired_rows",
    "REFINE_TOLERANCE",
    "refine_points",
    "unresolved_jumps",
]

POINT_COLUMNS = ("key", "name", "method", "pipeline", "family", "knob", "value", "pcc", "srcc", "spdd",
                 "score_std", "spdd_floor_p95")
#: A score spread below this share of vanilla's is a collapse (the scores are nearly constant).
COLLAPSE_RATIO = 0.1
#: Below this share of vanilla's spread the scores are narrowed: part of their small SPDD is the
#: narrower range, not fairer ranking (the criterion of the project's "no collapse" target).
NARROW_RATIO = 0.5


def _metric(metrics: Mapping, key: str, part: str = "value") -> float:
    m = (metrics or {}).get(key)
    if isinstance(m, dict):
        m = m.get(part)
    try:
        return float(m) if m is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _weight(info) -> float:
    """The run's own knob value (λ_W, λ_l2 or λ_mmd), NaN for a method without one."""
    field = WEIGHT_FIELDS.get(info.method)
    if field is None:
        return math.nan
    if field == "lambda_w":
        return float(info.lambda_w)
    cfg = getattr(info, "config", None)
    if cfg is None and getattr(info, "path", None) is not None:
        try:
            cfg = read_run_config(info.path).get("train")
        except (ValueError, OSError):
            cfg = None
    try:
        return float(cfg[field]) if isinstance(cfg, Mapping) and field in cfg else math.nan
    except (TypeError, ValueError):
        return math.nan


def pipeline_points(infos: Sequence[Any], predictions: Mapping[str, pd.DataFrame], *,
                    repaired: Iterable[str] = (), thetas: Sequence[float] = postprocess.DEFAULT_THETAS,
                    n_perm: int = 100) -> pd.DataFrame:
    """One row per pipeline: every run in `infos` as trained, and every run named in `repaired`
    followed by the repair at each θ > 0 of `thetas`.

    `infos`: `fairviz.runs.RunInfo`-like objects (name, method, lambda_w, seed, metrics; an
    optional ``config`` dict of the other weights). `predictions`: run name -> its predictions.csv
    (needed for the repaired runs, and for the score spread of runs whose metrics lack it).
    Columns `POINT_COLUMNS`: ``key`` is unique (``name`` or ``name@θ``); ``family`` is
    ``"trained"`` or ``"repair"``; ``knob``/``value`` say which knob made the point (``weight``
    with the method's weight, NaN for methods without one; ``theta`` with θ). A run without a
    validation split cannot be repaired: ValueError naming it.
    """
    rows = []
    by_name = {}
    for info in infos:
        by_name[info.name] = info
        m = info.metrics or {}
        std = _metric(m, "score_std")
        if not math.isfinite(std) and info.name in predictions:
            p = predictions[info.name]
            std = float(np.std(p.loc[p["split"] == "test", "score"]))
        rows.append({
            "key": info.name, "name": info.name, "method": info.method, "pipeline": info.method,
            "family": "trained", "knob": "weight", "value": _weight(info),
            "pcc": _metric(m, "pcc"), "srcc": _metric(m, "srcc"), "spdd": _metric(m, "spdd"),
            "score_std": std, "spdd_floor_p95": _metric(m, "spdd_floor", "p95"),
        })
    ts = [t for t in (postprocess.check_strength(t) for t in thetas) if t > 0]
    for name in repaired:
        if name not in by_name:
            continue
        info = by_name[name]
        curve = postprocess.repair_curve(predictions[name], ts, n_perm=n_perm, seed=int(info.seed),
                                         run=f"run {name!r}")
        for _, r in curve.iterrows():
            rows.append({
                "key": f"{name}@{r['theta']:g}", "name": name, "method": info.method,
                "pipeline": postprocess.repair_label(info.method), "family": "repair", "knob": "theta",
                "value": float(r["theta"]), "pcc": r["pcc"], "srcc": r["srcc"], "spdd": r["spdd"],
                "score_std": r["score_std"], "spdd_floor_p95": r["spdd_floor_p95"],
            })
    return pd.DataFrame(rows, columns=list(POINT_COLUMNS))


def mark_front(points: pd.DataFrame) -> pd.DataFrame:
    """`points` with a boolean column ``on_front``: no other point has lower-or-equal SPDD and
    higher-or-equal PCC (strictly better in one). Points with NaN never are."""
    out = points.copy()
    out["on_front"] = False
    if len(out):
        idx = pareto_front(out[["spdd", "pcc"]].to_numpy(dtype=np.float64))
        out.iloc[idx, out.columns.get_loc("on_front")] = True
    return out


def flag_spread(points: pd.DataFrame, reference_std: float | None = None) -> pd.DataFrame:
    """`points` with ``spread_ratio`` (score std / the reference's), ``collapsed`` (ratio below
    `COLLAPSE_RATIO`) and ``narrow`` (ratio below `NARROW_RATIO`).

    `reference_std` defaults to the spread of the trained vanilla run among the points (the
    unconstrained model), else to the largest spread present.
    """
    out = points.copy()
    ref = reference_std
    if ref is None:
        van = out[(out["method"] == "vanilla") & (out["family"] == "trained")]["score_std"].dropna()
        ref = float(van.iloc[0]) if len(van) else float(out["score_std"].max()) if len(out) else math.nan
    ratio = out["score_std"] / ref if ref and math.isfinite(ref) and ref > 0 else out["score_std"] * math.nan
    out["spread_ratio"] = ratio
    out["collapsed"] = (ratio < COLLAPSE_RATIO).fillna(False).astype(bool)
    out["narrow"] = (ratio < NARROW_RATIO).fillna(False).astype(bool)
    out.attrs["reference_std"] = ref
    return out


def best_pipeline(points: pd.DataFrame, max_spdd: float, *, keep_spread: bool = True) -> pd.Series | None:
    """The most accurate point (highest PCC) with SPDD at most `max_spdd`, or None.

    With `keep_spread` (default), collapsed and narrowed points (`flag_spread`) are passed over:
    a constant score would otherwise "win" every low SPDD. Ties: the lower SPDD, then the key.
    """
    try:
        eps = float(max_spdd)
    except (TypeError, ValueError):
        raise ValueError(f"the accepted SPDD must be a number; got {max_spdd!r}") from None
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"the accepted SPDD must be a finite number >= 0; got {max_spdd!r}")
    ok = points[(points["spdd"] <= eps) & points["pcc"].notna()]
    if keep_spread and "narrow" in ok.columns:
        ok = ok[~ok["narrow"] & ~ok["collapsed"]]
    if ok.empty:
        return None
    return ok.sort_values(["pcc", "spdd", "key"], ascending=[False, True, True]).iloc[0]


def repaired_rows(frame: pd.DataFrame, predictions: Mapping[str, pd.DataFrame], theta: float, *,
                  n_perm: int = 100) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Rows ``<run> + repair`` for a `fairviz.app_support.runs_frame` table: each run's test scores
    repaired at `theta` by the map fitted on its validation rows (point values; intervals NaN).

    Returns (rows in the columns of `frame`, with ``name`` = ``"<run> + repair θ=<theta>"`` and
    ``method`` = ``"<method> + repair"``; [(run, reason)] for runs that cannot be repaired, e.g.
    without a validation split). A `theta` outside [0, 1] raises ValueError.
    """
    theta = postprocess.check_strength(theta)
    rows, skipped = [], []
    for _, r in frame.iterrows():
        try:
            curve = postprocess.repair_curve(predictions[r["name"]], [theta], n_perm=n_perm, seed=int(r["seed"]),
                                             run=f"run {r['name']!r}")
        except ValueError as err:
            skipped.append((r["name"], str(err)))
            continue
        c = curve.iloc[0]
        row = {col: math.nan for col in frame.columns}
        row.update({k: r[k] for k in ("alpha", "bias_mode", "lambda_w", "seed", "n") if k in frame.columns})
        row.update(name=f"{r['name']} + repair θ={theta:g}", method=postprocess.repair_label(r["method"]),
                   pcc=c["pcc"], srcc=c["srcc"], spdd=c["spdd"], speo=c["speo"], spdd_floor=c["spdd_floor"],
                   score_std=c["score_std"])
        rows.append(row)
    return pd.DataFrame(rows, columns=frame.columns), skipped


#: How far two neighbouring sweep points may differ before `refine_points` samples between them.
REFINE_TOLERANCE = {"pcc": 0.03, "spdd": 0.01, "score_std": 0.015}


def refine_points(table: pd.DataFrame, *, tolerance: dict | None = None, min_ratio: float = 1.2,
                  min_step: float = 1e-3) -> list[float]:
    """New knob values between neighbours of a sweep whose PCC, SPDD or score std differ by more
    than `tolerance` (default `REFINE_TOLERANCE`), the largest jump first.

    `table` has columns ``weight`` and the tolerance keys (`sweep_table` output). The new value is
    the geometric mean of the two neighbours (the knob acts on a log scale), or a third of the upper
    one when the lower is 0. A gap narrower than `min_ratio` (upper / lower) or `min_step` is not
    split further: the jump is then as sharp as the knob can resolve.
    """
    tol = {**REFINE_TOLERANCE, **(tolerance or {})}
    t = table.dropna(subset=["weight"]).sort_values("weight").drop_duplicates("weight")
    w = t["weight"].to_numpy(dtype=np.float64)
    jumps = []
    for i in range(len(w) - 1):
        a, b = w[i], w[i + 1]
        if b - a < min_step or (a > 0 and b / a < min_ratio):
            continue
        worst = 0.0
        for key, limit in tol.items():
            d = abs(float(t[key].iloc[i + 1]) - float(t[key].iloc[i]))
            worst = max(worst, d / limit if math.isfinite(d) else 0.0)
        if worst > 1.0:
            mid = math.sqrt(a * b) if a > 0 else b / 3.0
            jumps.append((worst, float(f"{mid:.3g}")))
    return [m for _, m in sorted(jumps, key=lambda j: -j[0]) if m not in set(w)]


def unresolved_jumps(points: pd.DataFrame) -> dict[str, list[float]]:
    """Per method, the weights `refine_points` would still add between its trained runs (one per
    weight: the lowest seed and name), i.e. where its curve jumps unseen; methods without any omitted."""
    out = {}
    trained = points[(points["family"] == "trained") & points["value"].notna()]
    for method, t in trained.groupby("method", sort=False):
        table = t.sort_values(["value", "name"]).drop_duplicates("value").rename(columns={"value": "weight"})
        new = refine_points(table) if len(table) > 1 else []
        if new:
            out[str(method)] = new
    return out
