"""The Compare page's table: runs (and runs + repair) side by side, value and interval per metric,
the best value per column and the runs the data cannot tell from it (no Streamlit here)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fairviz import figures
from fairviz.app_support import HIGHER_IS_BETTER, ties_with_best
from fairviz.methods import WEIGHT_FIELDS

BEST_STYLE = "font-weight: 700; background-color: #DCEBF7"
TIED_STYLE = "background-color: #EEF5FB"


def _column(metric: str, higher: bool) -> str:
    return f"{metric.upper()} {'↑' if higher else '↓'}"


def _cell(row, k: str) -> str:
    v, lo, hi = row[k], row[f"{k}_low"], row[f"{k}_high"]
    if pd.isna(v):
        return "—"
    return f"{v:.3f}" + (f"  [{lo:.3f}, {hi:.3f}]" if pd.notna(lo) and pd.notna(hi) else "")


def _number(v) -> str:
    return "—" if pd.isna(v) else f"{v:.3f}"


@dataclass(frozen=True)
class CompareTable:
    """``shown``: the table as displayed (index: run); ``best``: column → the best run (or None);
    ``tied``: column → runs whose interval overlaps the best one's."""

    shown: pd.DataFrame
    best: dict
    tied: dict

    def styles(self, col: pd.Series) -> list[str]:
        """CSS of each cell of a ``shown`` column (for ``DataFrame.style.apply(axis=0)``)."""
        target, tied = self.best.get(col.name), self.tied.get(col.name, [])
        return [BEST_STYLE if idx == target else (TIED_STYLE if idx in tied else "") for idx in col.index]

    def best_caption(self) -> str:
        """``column → `run``` for each column with a best run, with the number of ties."""
        return ", ".join(f"{col} → `{run}`" + (f" (tied with {len(self.tied[col])})" if self.tied[col] else "")
                         for col, run in self.best.items() if run is not None)


def compare_table(sub: pd.DataFrame) -> CompareTable:
    """``sub``: `fairviz.app_support.runs_frame` rows indexed by run name (plus repaired rows)."""
    best = figures.best_per_column(sub, HIGHER_IS_BETTER)
    ties = ties_with_best(sub)
    shown = pd.DataFrame(
        {
            "method": sub["method"],
            "α": sub["alpha"].map("{:g}".format),
            "λ_W": [f"{lw:g}" if WEIGHT_FIELDS.get(m) == "lambda_w" else "—"
                    for m, lw in zip(sub["method"], sub["lambda_w"])],
            "seed": sub["seed"],
            **{_column(k, up): [_cell(r, k) for _, r in sub.iterrows()] for k, up in HIGHER_IS_BETTER.items()},
            "SPDD floor": sub["spdd_floor"].map(_number),
            "score spread": sub["score_std"].map(_number),
        },
        index=sub.index,
    )
    shown.index.name = "run"
    return CompareTable(
        shown=shown,
        best={_column(k, up): best.get(k) for k, up in HIGHER_IS_BETTER.items()},
        tied={_column(k, up): ties.get(k, []) for k, up in HIGHER_IS_BETTER.items()},
    )
