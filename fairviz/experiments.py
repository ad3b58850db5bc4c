"""The paper's experiment: every method on the same data and seeds, and the lambda_W sweep.

    from fairviz.experiments import compare, sweep, format_table
    table = compare(alpha=4, seeds=[0, 1, 2])          # one row per method, mean and std
    print(format_table(table, fmt="markdown"))
    runs = sweep("ours", alpha=4, lambda_ws=[0, 0.1, 0.3, 1, 3, 10])

The features are loaded once and shared by all runs; each run differs from the others only in
its method (and seed), so the comparison is fair: same data, split, bias injection, encoders,
epochs and steps per epoch.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from fairviz import postprocess
from fairviz.methods import ALL_METHODS, COMPARED_METHODS
from fairviz.runs import RunMetrics, save_run
from fairviz.sweeps import SweepPlan
from fairviz.train import Run, TrainConfig, load_features, train

#: The per-run numbers `compare` collects (all on the test split, true labels).
RUN_COLUMNS = (
    "pcc", "srcc", "spdd", "speo", "spdd_grid50", "speo_grid50", "spdd_floor", "val_pcc", "best_epoch",
)
#: The columns of the paper's table.
TABLE_METRICS = ("pcc", "srcc", "spdd", "speo")


def _run_numbers(m: RunMetrics) -> dict:
    """The `RUN_COLUMNS` of stored metrics `m` as floats (NaN when absent)."""
    out = {k: m.get(k) for k in RUN_COLUMNS}
    out["spdd_floor"] = m.get("spdd_floor", "mean")
    out["best_epoch"] = float("nan") if m.best_epoch is None else float(m.best_epoch)
    return out


def run_record(run: Run) -> dict:
    """One flat row of numbers for `run` (metric values without confidence intervals)."""
    m = RunMetrics.from_dict(run.metrics, f"run {run.name!r} metrics")
    cfg = run.config
    rec = {
        "name": run.name,
        "method": cfg.method,
        "alpha": cfg.alpha,
        "bias_mode": cfg.bias_mode,
        "lambda_w": cfg.lambda_w,
        "weight": cfg.method_weight(),  # the method's own distribution-term weight (None: no term)
        "seed": cfg.seed,
        **_run_numbers(m),
        "spdd_floor_p95": m.get("spdd_floor", "p95"),
        "score_std": m.get("score_std"),
        "theta": float("nan"),  # no post-processing
        "seconds": float(run.info.get("train_seconds", float("nan"))),
    }
    return rec


def repaired_record(run: Run, theta: float = 1.0) -> dict:
    """`run_record` of ``<method> + repair``: the run's test scores repaired at strength `theta` by
    the barycenter map fitted on its validation rows only (`fairviz.postprocess`).

    The permutation floor uses the run's own ``n_perm`` and seed. Grid-50 columns are NaN.
    """
    rec = run_record(run)
    rmap = postprocess.fit_validation_repair(run.predictions, run=f"run {run.name!r}")
    test = postprocess.repaired_test(run.predictions, rmap, theta)
    m = postprocess.pipeline_metrics(test["score"], test["label"], test["group"],
                                     n_perm=run.config.n_perm, seed=run.config.seed)
    rec.update({k: m[k] for k in ("pcc", "srcc", "spdd", "speo", "spdd_floor", "spdd_floor_p95", "score_std")})
    rec.update(method=postprocess.repair_label(run.config.method), name=f"{run.name}+repair{theta:g}",
               theta=float(theta), spdd_grid50=float("nan"), speo_grid50=float("nan"))
    return rec


def _shared_features(cfg: TrainConfig, progress):
    def data_progress(done, total, what):
        if progress is not None:
            progress({"stage": "data", "done": done, "total": total, "what": what})

    return load_features(cfg, progress=data_progress)


def _save(run: Run, out_root, overwrite: bool) -> Path | None:
    if out_root is None:
        return None
    return save_run(run, Path(out_root) / run.name, overwrite=overwrite)


def compare_runs(
    alpha: float,
    seeds: Iterable[int] = (0, 1, 2),
    methods: Sequence[str] = COMPARED_METHODS,
    *,
    out_root=None,
    overwrite: bool = False,
    progress: Callable[[dict], Any] | None = None,
    features=None,
    on_run: Callable[[Run, pd.DataFrame], Any] | None = None,
    repair_strength: float | None = 1.0,
    **cfg,
) -> pd.DataFrame:
    """Train every method for every seed; one row of test metrics per run (see `run_record`).

    With `repair_strength` theta (default 1; None for none), every run also gets a row
    ``<method> + repair`` (see `repaired_record`): post-processing as a method family of its own.

    `cfg` are further TrainConfig fields (bias_mode, epochs, lambda_w, lambda_l2, ...), the same
    for every run. With `out_root`, each run is also saved there as ``<method>-a<alpha>-...-s<seed>``.
    `progress(event)` gets the training events with ``run`` (its name), ``run_index`` and
    ``n_runs`` added. `on_run(run, rows_so_far)` is called after each run (e.g. to write partial
    results).
    """
    seeds = [int(s) for s in seeds]
    methods = list(methods)
    if repair_strength is not None:
        repair_strength = postprocess.check_strength(repair_strength)
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(ALL_METHODS)}")
    if not seeds or not methods:
        raise ValueError("compare needs at least one seed and one method")
    configs = [TrainConfig(method=m, alpha=alpha, seed=s, **cfg) for s in seeds for m in methods]
    if features is None:
        features = _shared_features(configs[0], progress)
    rows = []
    for run in _train_each(configs, features, progress, out_root, overwrite):
        rows.append(run_record(run))
        if repair_strength is not None:
            rows.append(repaired_record(run, repair_strength))
        if on_run is not None:
            on_run(run, pd.DataFrame(rows))
    return pd.DataFrame(rows)


def summarize(
    per_run: pd.DataFrame, metrics: Sequence[str] = TABLE_METRICS + ("spdd_floor", "score_std")
) -> pd.DataFrame:
    """Mean and sample std over seeds per method: columns ``<metric>_mean``, ``<metric>_std``, ``n_seeds``.

    Rows follow the registry order, the repaired pipelines (``<method> + repair``) after the
    trained methods. A std over one seed is NaN.
    """
    present = set(per_run["method"])
    order = [m for m in ALL_METHODS if m in present]
    order += [postprocess.repair_label(m) for m in ALL_METHODS if postprocess.repair_label(m) in present]
    g = per_run.groupby("method", sort=False)
    out = pd.DataFrame(index=pd.Index(order, name="method"))
    for key in metrics:
        out[f"{key}_mean"] = g[key].mean().reindex(order)
        out[f"{key}_std"] = g[key].std(ddof=1).reindex(order)
    out["n_seeds"] = g["seed"].nunique().reindex(order)
    for key in ("alpha", "bias_mode"):
        out.attrs[key] = sorted({v.item() if hasattr(v, "item") else v for v in per_run[key]})
    return out


def compare(
    alpha: float,
    seeds: Iterable[int] = (0, 1, 2),
    methods: Sequence[str] = COMPARED_METHODS,
    **cfg,
) -> pd.DataFrame:
    """The paper's table: `compare_runs` summarised as mean/std per method (see `summarize`).

    The per-run rows are kept in ``table.attrs["runs"]`` (a list of dicts).
    """
    per_run = compare_runs(alpha, seeds, methods, **cfg)
    table = summarize(per_run)
    table.attrs["runs"] = per_run.to_dict(orient="records")
    return table


def format_table(
    table: pd.DataFrame, fmt: str = "markdown", metrics: Sequence[str] = TABLE_METRICS, digits: int = 3,
    floor: bool = True,
) -> str:
    """`summarize` output as "mean ± std" cells, in Markdown (``fmt="markdown"``) or CSV.

    With `floor`, the table also shows the SPDD permutation floor and the test scores' std (a
    small SPDD with a tiny std means collapsed scores, not fair ones).
    """
    def cell(mean, std):
        if mean is None or (isinstance(mean, float) and math.isnan(mean)):
            return "–"
        s = f"{mean:.{digits}f}"
        if std is not None and not (isinstance(std, float) and math.isnan(std)):
            s += f" ± {std:.{digits}f}"
        return s

    header = ["method"] + [k.upper() for k in metrics]
    extra = [c for c in ("spdd_floor", "score_std") if floor and f"{c}_mean" in table]
    header += [{"spdd_floor": "SPDD floor", "score_std": "score std"}[c] for c in extra]
    rows = []
    for method, r in table.iterrows():
        row = [str(method)] + [cell(r[f"{k}_mean"], r.get(f"{k}_std")) for k in metrics]
        row += [f"{r[f'{c}_mean']:.{digits}f}" for c in extra]
        rows.append(row)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()
    if fmt != "markdown":
        raise ValueError(f"fmt must be 'markdown' or 'csv'; got {fmt!r}")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def sweep(
    method: str,
    alpha: float,
    lambda_ws: Iterable[float],
    *,
    out_root=None,
    overwrite: bool = False,
    names: Callable[[float], str] | None = None,
    progress: Callable[[dict], Any] | None = None,
    features=None,
    adaptive: int = 0,
    **cfg,
) -> list[Run]:
    """One run per value of the method's weight (same seed, data and budget); saved under
    `out_root` if given. The values go to the method's own weight (`fairviz.sweeps.SweepPlan`, the
    definition the app's sweep jobs share): lambda_w for `ours`, lambda_l2 for `l2`, lambda_mmd
    for `mmd`, lambda_sw for `fairoffset`.

    With `adaptive` = k > 0, up to k more runs are added where the curve moves fast between two
    neighbouring values (see `refine_points`), a round at a time, so a cliff (e.g. the scores
    collapsing) is bracketed instead of jumped over. Runs are returned sorted by weight.
    `names(value)` picks each run's name (default: TrainConfig.default_name()).
    """
    plan = SweepPlan.of(method, lambda_ws, adaptive)
    base = TrainConfig(method=method, alpha=alpha, **cfg)

    def configs_for(values):
        return [plan.config(base, v, names(v) if names else base.name) for v in values]

    first = configs_for(plan.values)
    if features is None:
        features = _shared_features(first[0], progress)
    runs = list(_train_each(first, features, progress, out_root, overwrite, total=plan.total))
    left = plan.adaptive
    while left > 0:
        new = plan.refine(sweep_table(runs), left)
        if not new:
            break
        runs += _train_each(configs_for(new), features, progress, out_root, overwrite,
                            offset=len(runs), total=plan.total)
        left -= len(new)
    return sorted(runs, key=lambda r: r.config.method_weight())


def sweep_table(runs: Sequence[Run]) -> pd.DataFrame:
    """weight, PCC, SPDD, SPEO, score std (collapse indicator) of each run in a sweep."""
    rows = []
    for run in runs:
        rec = run_record(run)
        test = run.test_predictions()
        rec["score_std"] = float(np.std(test["score"]))
        rows.append({k: rec[k] for k in ("name", "weight", "pcc", "srcc", "spdd", "speo", "spdd_floor", "score_std")})
    return pd.DataFrame(rows)


def _train_each(configs, features, progress, out_root, overwrite, *, offset: int = 0, total: int | None = None):
    """Train (and save, when `out_root` is set) each config in turn, yielding its Run; progress
    events gain `run`, `run_index` (from `offset`) and `n_runs` (`total`, default len(configs))."""
    for i, c in enumerate(configs):
        name = c.name or c.default_name()

        def inner(event, _i=offset + i, _name=name):
            if progress is not None:
                progress({**event, "run": _name, "run_index": _i, "n_runs": total or len(configs)})

        run = train(c, progress=inner, features=features)
        _save(run, out_root, overwrite)
        yield run
