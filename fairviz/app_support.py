"""Plain computations the app's pages need (no Streamlit here, so they are tested directly).

- which run is the default "current run", and which runs the Compare / Trade-off /
  Representation pages start with;
- the runs as one table of metrics (value and interval per metric);
- the legend names of a run's groups and the Representation page's distance definition;
- weight values typed as text (the Trade-off page's sweep);
- a sample synthetic interview (video, audio, transcript) written once to the cache;
- turning the Train page's data-source choice into a `TrainConfig.data` value.

Uploaded tables and the resampling budgets live in `fairviz.app_services` (re-exported here);
the pages' other computations too, one module per page concern.

Inputs are `fairviz.runs.RunInfo` objects (``name``, ``method``, ``alpha``, ``lambda_w``,
``seed``, ``bias_mode``, ``metrics``), or anything with those attributes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fairviz.app_services.budget import BOOT_COST_PER_ROW, auto_n_boot, boot_seconds  # noqa: F401 (re-exported)
from fairviz.app_services.upload import (  # noqa: F401 (re-exported)
    APP_MAX_CELLS,
    APP_MAX_ROWS,
    UPLOAD_SUFFIXES,
    audit_columns,
    file_slug,
    read_uploaded_table,
)
from fairviz.atomic import staged_dir
from fairviz.data import export_examples, make_synthetic
from fairviz.data.first_impressions import build_manifest
from fairviz.jsonsafe import jsonable
from fairviz.methods import COMPARED_METHODS
from fairviz.paths import DATA_ROOT_ENV, cache_dir, data_root, under_data_root
from fairviz.runs import Estimate
from fairviz.uncertainty import best_and_ties, describe

#: Names tried first for the default current run, in order (then: ours at α=4 in rater-bias mode).
PREFERRED_RUN_NAMES = ("a4-ours", "ours-a4", "ours-a4-label-lw1-s0")
METHOD_ORDER = COMPARED_METHODS
METRIC_NAMES = ("pcc", "srcc", "spdd", "speo")
#: Direction of "better" for each metric column (for marking the best value per column).
HIGHER_IS_BETTER = {"pcc": True, "srcc": True, "spdd": False, "speo": False}

__all__ = [
    "PREFERRED_RUN_NAMES",
    "METHOD_ORDER",
    "HIGHER_IS_BETTER",
    "pick_default_run",
    "runs_frame",
    "default_compare_names",
    "metric_value",
    "format_metric",
    "metric_caption",
    "ties_with_best",
    "sample_interview",
    "resolve_data_source",
    "parse_weights",
    "group_names",
    "REPRESENTATION_DISTANCE",
    "read_uploaded_table",
    "audit_columns",
    "auto_n_boot",
    "boot_seconds",
]


def _method_rank(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def _close(a: Any, b: float) -> bool:
    try:
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9)
    except (TypeError, ValueError):
        return False


def pick_default_run(infos: Sequence[Any], preferred: Sequence[str] = PREFERRED_RUN_NAMES):
    """The run the app opens on: a preferred name if present, else `ours` at α = 4 in rater-bias
    mode (λ_W = 1 and seed 0 first), else the first run by name; None when there are no runs."""
    infos = list(infos)
    if not infos:
        return None
    by_name = {i.name: i for i in infos}
    for name in preferred:
        if name in by_name:
            return by_name[name]
    ours = [i for i in infos if i.method == "ours" and _close(i.alpha, 4.0) and getattr(i, "bias_mode", "label") == "label"]
    if ours:
        return sorted(ours, key=lambda i: (not _close(i.lambda_w, 1.0), i.seed != 0, i.name))[0]
    return sorted(infos, key=lambda i: i.name)[0]


def metric_value(metrics: dict, name: str, part: str = "value") -> float:
    """``metrics[name][part]`` as a float (NaN when absent, null or not finite); accepts a bare
    number too. A stored metric is read as a `fairviz.runs.Estimate`, as every run reader does."""
    est = Estimate.parse(jsonable((metrics or {}).get(name)), name)
    return float("nan") if est is None else est.get(part)


def format_metric(metrics: dict, name: str, digits: int = 3) -> str:
    """``0.123 [0.101, 0.150]`` (value and interval) or ``—`` when the metric is absent."""
    v = metric_value(metrics, name)
    if not math.isfinite(v):
        return "—"
    lo, hi = metric_value(metrics, name, "ci_low"), metric_value(metrics, name, "ci_high")
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
    return f"{v:.{digits}f}"


def metric_caption(metrics: dict, name: str, n: int | None = None) -> str:
    """The caption under a metric card: for the distances (SPDD, SPEO) the sentence of
    `fairviz.uncertainty.describe` (what the value, test and bound mean); for PCC / SRCC
    ``95 % CI [lo, hi]``; then ``n = …``. "needs a label column" when the metric is absent."""
    v = metric_value(metrics, name)
    if not math.isfinite(v):
        return "needs a label column"
    parts = []
    m = metrics.get(name)
    if name in ("spdd", "speo") and isinstance(m, dict):
        if math.isfinite(metric_value(metrics, name, "ci_high")) or math.isfinite(metric_value(metrics, name, "p_value")):
            parts.append(describe(name.upper(), {**m, "level": metrics.get("level", 0.95)}))
    else:
        lo, hi = metric_value(metrics, name, "ci_low"), metric_value(metrics, name, "ci_high")
        if math.isfinite(lo) and math.isfinite(hi):
            parts.append(f"95 % CI [{lo:.3f}, {hi:.3f}]")
    if n:
        parts.append(f"n = {n:,}")
    return " · ".join(parts)


def ties_with_best(frame: pd.DataFrame, higher_is_better: dict = HIGHER_IS_BETTER) -> dict[str, list]:
    """Per metric column of a `runs_frame` (indexed by run), the runs whose interval overlaps
    the best run's (`fairviz.uncertainty.best_and_ties`): the data cannot tell them apart, so
    "best per column" is not decided by noise. {column: [index labels]} (empty: a clear best)."""
    out = {}
    for k, higher in higher_is_better.items():
        if k not in frame.columns:
            continue
        _, ties = best_and_ties(pd.to_numeric(frame[k], errors="coerce"), pd.to_numeric(frame[f"{k}_low"], errors="coerce"),
                                pd.to_numeric(frame[f"{k}_high"], errors="coerce"), higher)
        out[k] = [label for label, tie in zip(frame.index, ties) if tie]
    return out


def runs_frame(infos: Iterable[Any]) -> pd.DataFrame:
    """One row per run: ``name, method, alpha, bias_mode, lambda_w, seed`` and, per metric in
    (pcc, srcc, spdd, speo), ``<m>``, ``<m>_low``, ``<m>_high``; plus ``spdd_floor`` (the
    permutation floor stored with the run, NaN if absent), ``score_std`` (the test scores' std: a
tiny SPDD with a tiny spread means collapsed scores) and ``n`` (test rows). Sorted by
    method order, α, λ_W, seed.
    """
    rows = []
    for i in infos:
        m = dict(getattr(i, "metrics", None) or {})
        row = {
            "name": i.name,
            "method": i.method,
            "alpha": float(i.alpha),
            "bias_mode": getattr(i, "bias_mode", None),
            "lambda_w": float(i.lambda_w),
            "seed": int(i.seed),
        }
        for k in METRIC_NAMES:
            row[k] = metric_value(m, k)
            row[f"{k}_low"] = metric_value(m, k, "ci_low")
            row[f"{k}_high"] = metric_value(m, k, "ci_high")
        floor = m.get("spdd_floor")
        row["spdd_floor"] = float(floor.get("mean", np.nan)) if isinstance(floor, dict) else (
            float(floor) if isinstance(floor, (int, float)) else float("nan"))
        row["score_std"] = metric_value(m, "score_std")
        row["n"] = m.get("n", np.nan)
        rows.append(row)
    cols = ["name", "method", "alpha", "bias_mode", "lambda_w", "seed"] + [
        c for k in METRIC_NAMES for c in (k, f"{k}_low", f"{k}_high")] + ["spdd_floor", "score_std", "n"]
    df = pd.DataFrame(rows, columns=cols)
    if len(df):
        df = df.assign(_r=df["method"].map(_method_rank)).sort_values(
            ["_r", "alpha", "lambda_w", "seed", "name"]).drop(columns="_r").reset_index(drop=True)
    return df


def default_compare_names(infos: Sequence[Any], *, alpha: float = 4.0, bias_mode: str = "label",
                          seed: int = 0) -> list[str]:
    """One run per method at ``alpha`` (the paper's table): rater-bias mode and ``seed`` preferred,
    then the shipped run of that method (named ``a<alpha>-<method>``, as `make models` names
    them), then λ_W = 1. Methods in the paper's order."""
    chosen: dict[str, Any] = {}
    for i in infos:
        if not _close(i.alpha, alpha):
            continue
        shipped = i.name == f"a{alpha:g}-{i.method}"
        key = (getattr(i, "bias_mode", bias_mode) != bias_mode, i.seed != seed, not shipped,
               not _close(i.lambda_w, 1.0), i.name)
        if i.method not in chosen or key < chosen[i.method][0]:
            chosen[i.method] = (key, i)
    return [chosen[m][1].name for m in sorted(chosen, key=_method_rank)]


def sample_interview(out_dir: str | Path | None = None, *, seed: int = 0) -> dict:
    """One synthetic candidate written as real files: ``{"video": Path (mp4), "wav": Path,
    "transcript": str, "label": float, "group": int, "id": str}``.

    Generated once (a second call reads the files back); default folder
    ``cache_dir()/app-sample-<seed>``. Written into a temporary folder and renamed, so two
    sessions asking at once never see half-written files.
    """
    out = Path(out_dir) if out_dir is not None else cache_dir() / f"app-sample-{int(seed)}"
    manifest = out / "manifest.csv"
    if not manifest.exists():
        interviews = make_synthetic(2, seed=seed)
        try:
            with staged_dir(out) as tmp:
                export_examples(interviews, tmp, n=1)
        except FileExistsError:
            pass  # another session wrote it first
    df = pd.read_csv(manifest)
    row = df.iloc[0]
    return {
        "id": Path(str(row["video"])).stem,
        "video": out / str(row["video"]),
        "wav": out / str(row["wav"]),
        "transcript": str(row["transcript"]),
        "label": float(row["label"]),
        "group": int(row["group"]),
    }


def resolve_data_source(kind: str, path: str | None = None, *, out_dir: str | Path | None = None,
                        root: str | Path | None = None) -> str:
    """The `TrainConfig.data` value for a Train-page choice.

    ``kind``: ``"synthetic"`` → ``"synthetic"``; ``"manifest"`` → the CSV path (must exist);
    ``"first_impressions"`` → a manifest built from that folder with
    `fairviz.data.first_impressions.build_manifest`, written to ``out_dir`` (default: the cache).
    ``path`` is what the browser user typed: a path inside ``root`` (default
    `fairviz.paths.data_root()`, the operator's ``FAIRVIZ_DATA_ROOT``); without a root the two
    server-side sources are off. ``..`` and symbolic links are refused, and messages name paths
    relative to the root. Raises ValueError / FileNotFoundError with what to fix.
    """
    if kind == "synthetic":
        return "synthetic"
    if kind not in ("manifest", "first_impressions"):
        raise ValueError(f"unknown data source {kind!r}; choose synthetic, manifest or first_impressions")
    root = Path(root).resolve() if root is not None else data_root()
    if root is None or not root.is_dir():
        raise ValueError(f"training on server files is off: the server's operator has not set {DATA_ROOT_ENV} "
                         "(the folder under which users may name data); use the synthetic data, or "
                         "`python -m fairviz train` on the server")
    if not path or not str(path).strip():
        raise ValueError("enter the path of the manifest CSV or of the First Impressions folder, inside the data folder")
    what = "manifest CSV" if kind == "manifest" else "First Impressions folder"
    try:
        p = under_data_root(str(path), root)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{what} not found: {err}") from None
    shown = str(p.relative_to(root))
    if kind == "manifest":
        if not p.is_file():
            raise FileNotFoundError(f"manifest CSV not found: {shown!r} is not a file")
        if p.suffix.lower() != ".csv":
            raise ValueError(f"a manifest must be a .csv file with columns video, label, group; got {p.name}")
        return str(p)
    if not p.is_dir():
        raise FileNotFoundError(f"First Impressions folder not found: {shown!r} is not a folder")
    key = hashlib.sha256(str(p).encode()).hexdigest()[:12]
    out = Path(out_dir) if out_dir is not None else cache_dir() / "manifests"
    out_csv = out / f"first-impressions-{key}.csv"
    try:
        build_manifest(p, out_csv)
    except ValueError as err:
        raise ValueError(f"{shown}: {err}") from None
    return str(out_csv)


def group_names(info: dict | None) -> dict:
    """Legend names of a run's group codes from its ``info["features_meta"]``: the original group
    values (``group_labels[code]``) with which one is privileged (code 1, as the data modules encode
    it), e.g. ``{0: "group 0 (unprivileged)", 1: "group 1 (privileged)"}`` for the synthetic data
    or ``{0: "female (unprivileged)", 1: "male (privileged)"}`` for a manifest. Names are the
    user's text as written (escape them for HTML where needed)."""
    meta = (info or {}).get("features_meta") or {}
    labels = meta.get("group_labels") or [0, 1]
    has_priv = "privileged" in meta
    out = {}
    for code, label in enumerate(labels):
        base = f"group {label}" if isinstance(label, int) and not isinstance(label, bool) else str(label)
        if has_priv and len(labels) == 2:
            base += " (privileged)" if code == 1 else " (unprivileged)"
        out[code] = base
    return out


#: The one centroid-distance definition of the Representation page (plot and bar chart).
REPRESENTATION_DISTANCE = (
    "distance between the two groups' centroids in the full fused code Z (all dimensions, not the "
    "PCA plane), divided by the root-mean-square distance of the points to their overall mean, so "
    "runs whose codes differ in scale compare (0 = same centre)"
)


def parse_weights(text: str, *, what: str = "weight") -> list[float]:
    """Knob values typed as text (``"0 0.1, 0.5 1"``: spaces, commas or semicolons) as a sorted
    list of distinct floats >= 0; ValueError naming the first entry that is not one."""
    parts = [p for p in str(text or "").replace(",", " ").replace(";", " ").split() if p]
    if not parts:
        raise ValueError(f"enter at least one {what} value, e.g. 0 0.1 0.3 0.5 1")
    out = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{p!r} is not a number; enter {what} values separated by spaces") from None
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{what} values must be finite and >= 0; got {p!r}")
        out.append(v)
    return sorted(set(out))
