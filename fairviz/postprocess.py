"""Post-processing as a method family: any trained run + the barycenter repair at strength theta.

A run's scores are repaired with `fairviz.repair.RepairMap` (the Wasserstein barycenter map of
Chzhen et al. 2020) fitted on the run's **validation** rows only, then applied to its test rows:
the test split never informs the map, so the test metrics stay honest. ``theta`` in [0, 1] moves
each test score from the original (0) to the fully repaired one (1).

- `fit_validation_repair(predictions)`: the map, fitted on ``split == "val"`` rows (exact knots).
- `write_repair(folder, predictions)` / `load_repair(folder)`: the fitted map stored in the run
  folder as ``repair.json`` (JSON only), so a repaired run reloads exactly; runs saved before this
  file existed are refitted from their stored validation rows (the same numbers: the fit is
  deterministic).
- `repaired_test(predictions, rmap, theta)`: the test rows with repaired scores.
- `pipeline_metrics(scores, labels, groups)`: PCC, SRCC, SPDD, SPEO, score std and the SPDD
  permutation floor (mean and 95th percentile) of one set of test scores.
- `repair_curve(predictions, thetas)`: `pipeline_metrics` at each theta (the theta knob).
- `repair_label(method)`: how a repaired pipeline is named (``"mmd + repair"``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from fairviz import metrics
from fairviz.atomic import write_text
from fairviz.repair import RepairMap, check_strength

__all__ = [
    "REPAIR_FILE",
    "DEFAULT_THETAS",
    "repair_label",
    "validation_rows",
    "fit_validation_repair",
    "repair_state",
    "write_repair",
    "load_repair",
    "repaired_test",
    "permutation_floor",
    "pipeline_metrics",
    "repair_curve",
]

REPAIR_FILE = "repair.json"
STATE_FORMAT = "fairviz.run-repair"
STATE_VERSION = 1
#: theta values of a repair curve: 0 (the run as trained) to 1 (fully repaired), step 0.1.
DEFAULT_THETAS = tuple(round(0.1 * i, 1) for i in range(11))
REPAIR_SUFFIX = " + repair"
MAX_REPAIR_BYTES = 50 * 1024 * 1024  # an exact map of 10^6 validation rows is ~40 MB


def repair_label(method: str) -> str:
    """Name of the pipeline `method` followed by the barycenter repair, e.g. ``"mmd + repair"``."""
    return f"{method}{REPAIR_SUFFIX}"


def validation_rows(predictions: pd.DataFrame, *, run: str = "this run") -> pd.DataFrame:
    """The ``split == "val"`` rows of a run's predictions; ValueError when there are none.

    The repair must be fitted on data the test metrics never see; without validation rows there is
    no such data, and fitting on the test rows would make the repaired test metrics optimistic.
    """
    if "split" not in predictions.columns:
        raise ValueError(f"{run} has no 'split' column in its predictions, so it has no validation split "
                         "to fit the repair on; retrain it with this fairviz (runs store validation rows)")
    val = predictions[predictions["split"] == "val"]
    if len(val) == 0:
        raise ValueError(
            f"{run} has no validation rows in its predictions, so the repair cannot be fitted without "
            "using the test rows; retrain it with this fairviz (runs store their validation predictions)"
        )
    if val["group"].nunique() < 2:
        raise ValueError(f"{run}: its validation rows hold one group only; the repair needs every group")
    return val


def fit_validation_repair(predictions: pd.DataFrame, *, run: str = "this run") -> RepairMap:
    """`RepairMap` (exact knots) fitted on the validation rows of `predictions` only."""
    val = validation_rows(predictions, run=run)
    return RepairMap(n_quantiles=None).fit(val["score"].to_numpy(), val["group"].to_numpy())


def repair_state(rmap: RepairMap) -> dict:
    """The content of ``repair.json``: what was fitted, on which split, and the map itself."""
    return {"format": STATE_FORMAT, "version": STATE_VERSION, "fitted_on": "val",
            "n_fit": rmap.n_fit_, "map": rmap.to_dict()}


def write_repair(folder, predictions: pd.DataFrame) -> Path | None:
    """Fit the validation repair of a run and write it to ``folder/repair.json`` (atomically).

    Returns the file, or None when the predictions hold no usable validation split (such a run
    simply has no stored repair; `load_repair` then says why).
    """
    try:
        rmap = fit_validation_repair(predictions)
    except ValueError:
        return None
    return write_text(Path(folder) / REPAIR_FILE, json.dumps(repair_state(rmap), allow_nan=False) + "\n")


def load_repair(folder, predictions: pd.DataFrame | None = None) -> RepairMap:
    """The run's fitted repair: ``repair.json`` when present, else refitted on its validation rows.

    `predictions` (the run's predictions.csv) is read from the folder when not given. ValueError
    with what to do for a malformed file or a run without validation rows.
    """
    folder = Path(folder)
    path = folder / REPAIR_FILE
    if path.is_file():
        if path.stat().st_size > MAX_REPAIR_BYTES:
            raise ValueError(f"run {folder.name!r}: {REPAIR_FILE} is too large to be a fairviz repair")
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise ValueError(f"run {folder.name!r}: {REPAIR_FILE} is not valid JSON: {err}") from None
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"run {folder.name!r}: {REPAIR_FILE} is not a fairviz run repair")
        if state.get("fitted_on") != "val":
            raise ValueError(f"run {folder.name!r}: {REPAIR_FILE} was not fitted on the validation split")
        if not isinstance(state.get("map"), dict):
            raise ValueError(f"run {folder.name!r}: {REPAIR_FILE} holds no map")
        try:
            return RepairMap.from_dict(state["map"])
        except (TypeError, OverflowError, ValueError) as err:
            raise ValueError(f"run {folder.name!r}: {REPAIR_FILE} holds a malformed map: {err}") from None
    if predictions is None:
        from fairviz.runs import read_predictions  # noqa: PLC0415 - import cycle: fairviz.runs imports this module

        predictions = read_predictions(folder)
    return fit_validation_repair(predictions, run=f"run {folder.name!r}")


def repaired_test(predictions: pd.DataFrame, rmap: RepairMap, theta: float = 1.0) -> pd.DataFrame:
    """The test rows of `predictions` (score, label, group, split) with scores repaired at `theta`."""
    theta = check_strength(theta)
    test = predictions[predictions["split"] == "test"].reset_index(drop=True).copy()
    test["score"] = rmap.transform(test["score"].to_numpy(), test["group"].to_numpy(), theta)
    return test


def permutation_floor(scores, groups, *, n_perm: int = 200, seed: int = 0) -> dict:
    """SPDD of `scores` with the group labels permuted `n_perm` times: ``{"mean", "p95", "n_perm"}``.

    Two samples of one distribution still differ by about sigma/sqrt(n); an SPDD at or below the
    95th percentile is as fair as this many rows can tell.
    """
    rng = np.random.default_rng(seed)
    g = np.asarray(groups)
    s = np.asarray(scores, dtype=np.float64)
    vals = np.array([metrics.spdd(s, rng.permutation(g)) for _ in range(int(n_perm))])
    return {"mean": float(vals.mean()), "p95": float(np.quantile(vals, 0.95)), "n_perm": int(n_perm)}


def pipeline_metrics(scores, labels, groups, *, n_perm: int = 200, seed: int = 0) -> dict:
    """Test numbers of one pipeline: ``pcc, srcc, spdd, speo, score_std, spdd_floor, spdd_floor_p95``.

    scores, labels (true), groups: arrays (n,); scores in [0, 1]. ``n_perm = 0`` skips the floor
    (NaN). A constant score vector has PCC/SRCC NaN (no ranking at all).
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    g = np.asarray(groups)
    out = {"pcc": math.nan, "srcc": math.nan}
    if np.ptp(s) > 0:
        out = {"pcc": float(metrics.pcc(s, y)), "srcc": float(metrics.srcc(s, y))}
    out["spdd"] = float(metrics.spdd(s, g))
    out["speo"] = float(metrics.speo(s, y, g))
    out["score_std"] = float(np.std(s))
    floor = permutation_floor(s, g, n_perm=n_perm, seed=seed) if n_perm else {"mean": math.nan, "p95": math.nan}
    out["spdd_floor"] = floor["mean"]
    out["spdd_floor_p95"] = floor["p95"]
    return out


def repair_curve(predictions: pd.DataFrame, thetas: Iterable[float] = DEFAULT_THETAS, *,
                 rmap: RepairMap | None = None, n_perm: int = 200, seed: int = 0,
                 run: str = "this run") -> pd.DataFrame:
    """`pipeline_metrics` of the repaired test rows at each theta; one row per theta.

    `rmap` defaults to the map fitted on the validation rows of `predictions`. Columns: ``theta``
    and the keys of `pipeline_metrics`.
    """
    ts = [check_strength(t) for t in thetas]
    if not ts:
        raise ValueError("thetas is empty; pass repair strengths in [0, 1], e.g. 0 0.5 1")
    rmap = rmap if rmap is not None else fit_validation_repair(predictions, run=run)
    rows = []
    for t in ts:
        test = repaired_test(predictions, rmap, t)
        m = pipeline_metrics(test["score"], test["label"], test["group"], n_perm=n_perm, seed=seed)
        rows.append({"theta": t, **m})
    return pd.DataFrame(rows)
