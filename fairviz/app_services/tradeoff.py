"""The Trade-off page's numbers and sentences: every pipeline of one α and bias mode, the Pareto
front as a table, and what the page says about the best pipeline (no Streamlit here).

Markdown-special characters in a pipeline's name are escaped by the caller (``md``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from fairviz import pipelines
from fairviz.methods import ALL_METHODS, WEIGHT_FIELDS

#: Permutations for the SPDD floor of each repaired point (computed once per run).
N_PERM = 50


def sweepable_methods() -> list[str]:
    """Methods with a weight of their own, in the catalogue's order (what a sweep can vary)."""
    return [m for m in ALL_METHODS if m in WEIGHT_FIELDS]


def has_validation(predictions: pd.DataFrame) -> bool:
    """True when a run stores validation rows (the repair is fitted on them, never on test rows)."""
    return bool((predictions["split"] == "val").any())


def tradeoff_points(scope: Sequence[Any], predictions: Mapping[str, pd.DataFrame],
                    repaired: Sequence[str]) -> pd.DataFrame:
    """`fairviz.pipelines.pipeline_points` of the runs ``scope`` (RunInfo-like), with the repair
    curve of each run in ``repaired`` that has a validation split (an older run without one is
    drawn as trained only), the Pareto front marked and the score spreads flagged."""
    repairable = [n for n in repaired if has_validation(predictions[n])]
    pts = pipelines.pipeline_points(scope, predictions, repaired=repairable, n_perm=N_PERM)
    return pipelines.flag_spread(pipelines.mark_front(pts))


def front_table(pts: pd.DataFrame) -> pd.DataFrame:
    """The Pareto front of `tradeoff_points` as shown, fairest first."""
    front = pts[pts["on_front"]].sort_values("spdd")
    return pd.DataFrame({
        "pipeline": front["pipeline"], "run": front["name"],
        "knob": [f"θ = {v:g}" if k == "theta" else ("—" if pd.isna(v) else f"weight {v:g}")
                 for k, v in zip(front["knob"], front["value"])],
        "PCC": front["pcc"].round(3), "SPDD": front["spdd"].round(4),
        "SPDD floor p95": front["spdd_floor_p95"].round(4), "score spread": front["score_std"].round(3),
        "spread ÷ vanilla": front["spread_ratio"].round(2),
        "note": ["collapsed" if c else ("narrowed" if n else "") for c, n in zip(front["collapsed"], front["narrow"])],
    })


def best_text(best: pd.Series, eps: float, md: Callable[[str], str] = str) -> str:
    """The sentence naming the best pipeline for SPDD ≤ ``eps`` (`pipelines.best_pipeline`)."""
    return (
        f"Best pipeline for SPDD ≤ {eps:g}: **{md(best['pipeline'])}**"
        + (f" (θ = {best['value']:g})" if best["knob"] == "theta" else "")
        + f" on run `{best['name']}`: PCC {best['pcc']:.3f}, SPDD {best['spdd']:.4f}, "
        f"score spread {best['score_std']:.3f} ({best['spread_ratio']:.2f}× vanilla's)."
        + (" **Post-processing wins here**: a trained model followed by the barycenter repair beats "
           "every in-processing method at this SPDD." if best["family"] == "repair" else "")
    )


def spread_warning(raw: pd.Series | None, best: pd.Series | None, md: Callable[[str], str] = str) -> str | None:
    """Why the most accurate point ignoring spread (``raw``) is not named best, if it differs."""
    if raw is None or (best is not None and raw["key"] == best["key"]):
        return None
    return (
        f"`{raw['key']}` ({md(raw['pipeline'])}) has a higher PCC ({raw['pcc']:.3f}) at SPDD {raw['spdd']:.4f}, "
        f"but its score spread is {raw['score_std']:.3f} ({raw['spread_ratio']:.2f}× vanilla's): its scores "
        + ("have collapsed to a near-constant, " if raw["collapsed"] else "are squeezed together, ")
        + "so its small SPDD says little about fairness. It is not named best."
    )


def jump_warnings(pts: pd.DataFrame) -> list[str]:
    """One sentence per method whose curve still jumps between neighbouring weights."""
    return [f"The `{method}` curve still jumps between neighbouring weights (PCC, SPDD or the score "
            f"spread changes a lot): sample it there, e.g. with weights {', '.join(f'{v:g}' for v in values)} "
            "(or a sweep with extra adaptive runs, below)."
            for method, values in pipelines.unresolved_jumps(pts).items()]


def collapsed_front_warning(pts: pd.DataFrame) -> str | None:
    """The sentence listing collapsed runs on the Pareto front, if any."""
    bad = pts[pts["on_front"] & pts["collapsed"]]
    if not len(bad):
        return None
    return ("Collapsed runs on the Pareto front (near-constant scores; drawn with a red cross): "
            + ", ".join(f"`{k}` (spread {s:.3f})" for k, s in zip(bad["key"], bad["score_std"])))
