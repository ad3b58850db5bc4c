"""The bias-audit report: one self-contained HTML file (plotly.js inlined once, works offline).

`build_report(...)` returns the HTML as a string, so the CLI (`python -m fairviz report`) writes
it atomically and the app offers the same bytes as a download. Contents:

1. data description: rows, columns used, missing/unknown per attribute, date, source file name
   and SHA-256 (or the SHA-256 of the audited columns when no file bytes are given);
2. summary table: every attribute and intersection with SPDD (three multi-group variants),
   SPEO / PCC / SRCC with bootstrap intervals, permutation p-value and chance level;
3. per attribute / intersection: group counts, metrics with intervals, the DP(τ) curve with its
   bootstrap band and shaded SPDD, the score distributions, the pairwise W1 matrix, the NYC Local
   Law 144 scoring-rate table and the four-fifths check at τ with a test per group, and the
   permutation test (the chance-level SPDD for these group sizes);
4. repair: the effect of a full (θ = 1) and a partial (θ = 0.5) Wasserstein-barycenter repair on
   every attribute, the trade-off curve over θ, a held-out check of a fitted `RepairMap`;
5. methods: which numbers are exact and which are estimates, with the method of each interval.

Computation and drawing are apart: `compute_report` (``_compute.py``) turns the inputs into an
`AuditReport` (dataclasses in ``_model.py``: numbers, plain text and plotly figures), and `render`
(``_render.py``) draws it through the Jinja2 templates in ``templates/`` with autoescaping on, so
every user-provided string (file and column names, group values, free text) is HTML-escaped once
in tables and text; figures escape it for Plotly (`fairviz.theme.plotly_text`), and plotly
serialises figure data with ``<``/``>`` escaped, so a CSV cannot inject script and a group such as
``<40`` is shown as written everywhere.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Any

from fairviz.report._compute import FAST_PERM_COST, auto_n_perm, compute_report
from fairviz.report._inputs import data_fingerprint, resolve_inputs
from fairviz.report._model import FOUR_FIFTHS, AuditReport, ReportSettings
from fairviz.report._render import render

__all__ = ["build_report", "auto_n_perm", "data_fingerprint", "compute_report", "render", "AuditReport",
           "ReportSettings", "FAST_PERM_COST", "FOUR_FIFTHS"]


def build_report(
    data: Any = None,
    attributes: Any = None,
    labels: Any = None,
    *,
    score: Any = None,
    groups: Any = None,
    label: Any = None,
    source_name: str | None = None,
    source_bytes: bytes | None = None,
    source: str | None = None,
    title: str | None = None,
    tau: float = 0.5,
    n_boot: int = 200,
    level: float = 0.95,
    n_perm: int | None = None,
    alpha: float = 0.05,
    intersections: bool = True,
    exclude_small: bool = False,
    random_state: int = 0,
    max_groups: int = 200,
    generated_at: _dt.datetime | None = None,
    progress: Callable[[str], None] | None = None,
    reuse: dict | None = None,
    processes: bool = False,
) -> str:
    """The complete audit as one self-contained HTML document (str).

    Two ways to call it:

    - a table and column names: ``build_report(df, score="score", groups=["sex", "race"],
      label="label", source_name="scores.csv", source_bytes=raw_bytes)``;
    - arrays: ``build_report(scores, {"sex": sex, "race": race}, labels)`` (attributes may also
      be a DataFrame or one array).

    tau: the threshold of the four-fifths check; n_boot / level: bootstrap intervals of the
    metrics (level also for the DP(τ) band, which needs no resampling); n_perm: permutations per attribute (None: as many as fit a fixed work
    budget, 50–1000); intersections: also audit the intersection of all attributes;
    exclude_small: leave groups under 2 % out of the impact ratios (LL144); source: free text
    shown under the data description; progress(stage) is called as sections are computed;
    max_groups: refuse a grouping with more groups than this (an ID column picked by mistake);
    reuse: a dict kept with the data, so that a later report of it (another τ) reads the
    permutation tests, intervals and repair back instead of computing them again;
    processes: test the groupings of a large file in forked worker processes side by side, and
    repair in another beside the audit (`fairviz.side_by_side`; for a process of its own such
    as the CLI, not a server's; without, the repair of a large file runs on a thread).
    Bad input raises ValueError (the same messages as `fairviz.groups.audit_attributes`).
    """
    tau = float(tau)
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1]; got {tau!r}")
    settings = ReportSettings(tau=tau, n_boot=n_boot, level=level, n_perm=n_perm, alpha=alpha,
                              intersections=intersections, exclude_small=exclude_small,
                              random_state=random_state, max_groups=max_groups)
    inputs = resolve_inputs(data, attributes, labels, score, groups, label)
    report = compute_report(inputs, settings, source_name=source_name, source_bytes=source_bytes, source=source,
                            title=title, generated_at=generated_at, progress=progress, reuse=reuse,
                            processes=processes)
    return render(report)
