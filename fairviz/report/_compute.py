"""The report's numbers and figures: plain functions from the inputs to `fairviz.report._model`."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from fairviz import __version__, figures, metrics, theme
from fairviz.groups import audit_attributes, audit_intervals, prepare_groups, skip_reason
from fairviz.repair import RepairMap
from fairviz.repair_tradeoff import repair_tradeoff
from fairviz.report._inputs import ReportInputs, source_digest
from fairviz.report._model import (
    AccuracyRow,
    AttributeSection,
    AttributeStatus,
    AuditReport,
    DataSummary,
    GroupRow,
    RateRow,
    RepairRow,
    RepairSection,
    ReportSettings,
)
from fairviz.report_figures import add_dp_band, permutation_figure, repair_tradeoff_figure
from fairviz.side_by_side import PROCESS_MIN_ROWS, run_side_by_side, start_aside
from fairviz.significance import FAST_PERM_MAX_GROUPS, dp_band, permutation_test, shared_nulls
from fairviz.uncertainty import describe

#: Cost per row of SPDD's permutations through `fairviz.permute` relative to the generic path
#: (bench/RESULTS.md): two groups, and 3 to 255 groups.
FAST_PERM_COST = {2: 0.1, "more": 0.5}


def auto_n_perm(n: int, n_groups: int, *, budget: float = 1.5e8, low: int = 50, high: int = 1000,
                metric: str = "spdd") -> int:
    """Permutations for a permutation test within a work budget (rows × groups × permutations;
    SPDD's fast path counts `FAST_PERM_COST` per row). The smallest p-value is 1 / (result + 1)."""
    factor = 1.0
    if metric == "spdd" and n_groups <= FAST_PERM_MAX_GROUPS:
        factor = FAST_PERM_COST[2] if n_groups == 2 else FAST_PERM_COST["more"]
    cost = n * max(1, n_groups - 1) * factor
    return int(np.clip(budget / max(1.0, cost), low, high))


def compute_report(inputs: ReportInputs, settings: ReportSettings, *, source_name: str | None = None,
                   source_bytes: bytes | None = None, source: str | None = None, title: str | None = None,
                   generated_at: _dt.datetime | None = None,
                   progress: Callable[[str], None] | None = None, reuse: dict | None = None,
                   processes: bool = False) -> AuditReport:
    """Audit every attribute, run the permutation tests and the repair: the whole report as data.
    ``reuse``: a dict kept with the data (the app keeps one per upload) in which the results that
    do not depend on τ, alpha or the LL144 options (permutation tests, intervals, the repair) are
    stored and read back by a later report of the same data. From `PROCESS_MIN_ROWS` rows the
    repair runs beside the audit, and with ``processes`` it does so in a forked worker process
    and the groupings' tests, intervals and sections run side by side in forked workers too
    (`fairviz.side_by_side`; without, the repair runs on a thread). Bad input raises ValueError."""
    say = progress or (lambda stage: None)
    scores, attrs, y = inputs.scores, inputs.attributes, inputs.labels
    n = len(scores)
    for k, v in attrs.items():
        if len(v) != n:
            raise ValueError(f"attribute {k!r} has {len(v)} values but there are {n} scores")
    columns = prepare_groups(attrs, n, intersections=settings.intersections)
    for name, col in columns.items():
        if len(col.labels) > settings.max_groups:
            raise ValueError(
                f"{name!r} has {len(col.labels):,} distinct groups (more than {settings.max_groups}); a group column "
                "should hold a few values such as sex or race — is it an ID or a numeric column? "
                "(or leave out intersections)")
    say("auditing every attribute")
    reuse = {} if reuse is None else reuse
    audited = [name for name, col in columns.items() if skip_reason(col, n) is None]
    repair_key = _repair_key(audited, settings)
    aside = None
    if repair_key not in reuse and n >= PROCESS_MIN_ROWS:
        # the repair needs nothing from the audit: it runs beside it (a worker process on the
        # second core, or a thread), its result read when the audit is done
        aside = start_aside(_repair_work, (inputs, columns, settings.random_state), audited, processes=processes)
    try:
        multi, sections = _audit_sections(inputs, columns, settings, say, reuse, processes)
    except BaseException:
        if aside is not None:
            aside.cancel()
        raise
    when = (generated_at or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0)
    say("repair")
    if aside is not None:
        reuse[repair_key] = aside.result()
    elif repair_key not in reuse:
        reuse[repair_key] = repair_section(inputs, columns, audited, settings.random_state)
    repair = reuse[repair_key]
    say("writing the report")
    digest, digest_note = source_digest(inputs, source_bytes)
    data = data_summary(inputs, columns, multi, source_name=source_name, digest=digest,
                        digest_note=digest_note, source=source)
    return AuditReport(
        title=title or f"fairviz bias audit{' — ' + source_name if source_name else ''}",
        generated_at=when.isoformat(), version=__version__, settings=settings, n_boot=multi.n_boot,
        has_labels=y is not None, data=data, attributes=tuple(sections), repair=repair,
        n_perms=tuple(sorted({s.perm.n_perm for s in sections})))


def _repair_key(audited: list, settings: ReportSettings) -> tuple:
    return ("repair", tuple(audited), settings.random_state)


def _repair_work(state: tuple, audited: list[str]) -> RepairSection:
    """`repair_section` of ``audited`` with ``state`` = (inputs, columns, random_state)."""
    inputs, columns, random_state = state
    return repair_section(inputs, columns, audited, random_state)


def _tests_and_intervals(state: tuple, name: str) -> tuple:
    """(SPDD's permutation test, SPEO's or None, the audit with intervals) of one grouping. The
    tests run first; the intervals' uncertainty asks for the same tests and reads their first
    draws (`shared_nulls`) instead of drawing again."""
    multi, settings = state
    res = multi.results[name]
    with shared_nulls():
        perm, perm_speo = _permutations(res.prepared, len(res.groups), settings)
        intervals = audit_intervals(res, settings.n_boot, level=settings.level, random_state=settings.random_state,
                                    n_perm=settings.n_perm) if settings.n_boot else res.audit
    return perm, perm_speo, intervals


def _audit_sections(inputs: ReportInputs, columns, settings: ReportSettings, say, reuse: dict, processes: bool):
    """(`MultiAuditResult` with the intervals, the `AttributeSection` of each grouping). Each
    grouping is prepared once; its tests and intervals (`_tests_and_intervals`) and its section
    are made one grouping after another, or side by side in worker processes (``processes``,
    large files: `_grouping_work`). ``reuse``: the τ-independent results (tests, intervals) of
    an earlier report of the same data."""
    multi = audit_attributes(inputs.scores, inputs.attributes, inputs.labels, intersections=settings.intersections,
                             n_boot=0, level=settings.level, random_state=settings.random_state,
                             tau=settings.tau, alpha=settings.alpha, exclude_small=settings.exclude_small,
                             columns=columns, keep_sorts=False)  # re-derived per grouping, where needed
    anchors = {name: f"attr{i}" for i, name in enumerate(multi.results)}

    def key(name):
        return ("grouping", name, settings.n_boot, settings.level, settings.n_perm, settings.random_state)

    done = {}
    todo = [name for name in multi.results if key(name) not in reuse]
    if processes and len(todo) > 1 and len(inputs.scores) >= PROCESS_MIN_ROWS:
        say(f"tests and intervals of {len(todo)} groupings, side by side")
        # all at once: the repair still runs beside them, and a last grouping alone would leave a core idle
        outs = run_side_by_side(_grouping_work, (multi, settings, inputs, columns, anchors), todo,
                                processes=True, workers=len(todo))
        for name, (tests, section) in zip(todo, outs):
            reuse[key(name)], done[name] = tests, section
    sections = []
    for name, res in multi.results.items():
        say(f"attribute {name}")
        if name not in done:
            if key(name) not in reuse:
                reuse[key(name)] = _tests_and_intervals((multi, settings), name)
            done[name] = _section(anchors[name], res, reuse[key(name)], columns[name], inputs, settings)
        sections.append(done[name])
        # its sorts and curve are no longer needed: free them before the next grouping's work
        multi.results[name] = sections[-1].result
    return dataclasses.replace(multi, n_boot=int(settings.n_boot)), sections


def _grouping_work(state: tuple, name: str) -> tuple:
    """In a worker process: (`_tests_and_intervals`, the `AttributeSection`) of one grouping."""
    multi, settings, inputs, columns, anchors = state
    tests = _tests_and_intervals((multi, settings), name)
    return tests, _section(anchors[name], multi.results[name], tests, columns[name], inputs, settings)


def _section(anchor: str, res, tests: tuple, col, inputs: ReportInputs, settings: ReportSettings) -> AttributeSection:
    """`attribute_section` of a grouping's audit ``res`` with its ``tests`` (`_tests_and_intervals`);
    its result keeps no prepared rows (their sorts are large and no longer needed)."""
    perm, perm_speo, intervals = tests
    res = dataclasses.replace(res, audit=intervals)
    section = attribute_section(anchor, res, col, inputs, settings, perm, perm_speo)
    return dataclasses.replace(section, result=dataclasses.replace(res, prepared=None))


def data_summary(inputs: ReportInputs, columns, multi, *, source_name, digest, digest_note, source) -> DataSummary:
    """The data section: the source, the columns and each attribute's missing values and status."""
    statuses = []
    for name, col in columns.items():
        res = multi.results.get(name)
        statuses.append(AttributeStatus(
            name=name, rows_used=int(col.known.sum()), n_missing=col.n_missing, n_groups=len(col.labels),
            small_groups=tuple(res.small_groups) if res else (),
            skipped=None if res is not None else multi.skipped.get(name, "")))
    s = inputs.scores
    return DataSummary(
        source_name=source_name, digest=digest, digest_note=digest_note, n=len(s), score_name=inputs.score_name,
        score_min=float(s.min()), score_mean=float(s.mean()), score_max=float(s.max()),
        label_name=inputs.label_name, has_labels=inputs.labels is not None,
        attribute_names=tuple(inputs.attributes), source_note=source, attributes=tuple(statuses))


def _permutations(prepared: metrics.PreparedAudit, n_groups: int, settings: ReportSettings):
    """(SPDD's permutation test, SPEO's or None) on the prepared known rows of one grouping (run
    before the intervals, whose uncertainty then reads the first draws of these tests)."""
    d, n_perm = prepared.data, settings.n_perm
    k_perm = n_perm if n_perm is not None else auto_n_perm(d.n, n_groups)
    perm = permutation_test(d.x, d.codes, metric="spdd", n_perm=k_perm, random_state=settings.random_state)
    if d.y is None:
        return perm, None
    # SPEO's statistic costs about four times SPDD's per permutation: a quarter budget
    k_speo = n_perm if n_perm is not None else auto_n_perm(d.n, n_groups, budget=0.4e8, metric="speo")
    return perm, permutation_test(d.x, d.codes, d.y, metric="speo", n_perm=k_speo,
                                  random_state=settings.random_state, breakpoints=prepared.speo_breakpoints())


def attribute_section(anchor: str, res, col, inputs: ReportInputs, settings: ReportSettings,
                      perm, perm_speo) -> AttributeSection:
    """Everything the report shows for one attribute or intersection (`res`: its `AttributeAudit`
    with the intervals; ``perm`` / ``perm_speo``: its permutation tests)."""
    known = col.known
    xk = res.prepared.data.x if res.prepared is not None else inputs.scores[known]
    disp = col.values(known_only=True)  # labels as written: figures escape them for Plotly
    name_text = theme.plotly_text(res.name)
    prep = res.prepared  # the grouping as audited: its curve needs no new check or sort
    curve = prep.dp_curve() if prep is not None and prep.groups == tuple(col.labels) else metrics.dp_curve(xk, disp)
    band = dp_band(curve, [res.group_counts[g] for g in col.labels], level=settings.level)
    dp_fig = figures.dp_curve_figure(curve, tau=settings.tau, spdd=res.spdd_max_min,
                                     title=f"DP(τ) by {name_text}: gap in selection rate at every threshold")
    add_dp_band(dp_fig, band)
    impact = res.impact_ratios
    fails = impact.loc[impact["four_fifths_fail"]] if impact is not None else pd.DataFrame()
    sig_fails = fails.loc[fails["significant"]] if len(fails) else fails
    sr = res.scoring_rates
    ratios = sr.loc[~sr["excluded"], "impact_ratio"]
    groups = list(res.groups)
    a = res.audit
    return AttributeSection(
        anchor=anchor, result=res, perm=perm, perm_speo=perm_speo,
        spdd_words=_in_words("SPDD", a.spdd, settings.level),
        speo_words=_in_words("SPEO", a.speo, settings.level) if inputs.labels is not None else None,
        spdd_pair=tuple(theme.group_label(g) for g in res.spdd_pair[:2]),
        groups=tuple(GroupRow(theme.group_label(g), int(c), c / max(res.n, 1), res.w1_to_pooled[g])
                     for g, c in res.group_counts.items()),
        favoured=tuple((theme.group_label(g), v) for g, v in a.spdd_parts.items()),
        pairwise=(tuple(theme.group_label(g) for g in groups),
                  tuple((theme.group_label(g), tuple(res.pairwise_w1.loc[g, h] for h in groups)) for g in groups)),
        scoring_rates=rate_rows(sr), impact_rates=rate_rows(impact) if impact is not None else None,
        n_fails=len(fails), n_significant_fails=len(sig_fails),
        lowest_ratio=float(ratios.min()) if ratios.notna().any() else float("nan"),
        dp_figure=dp_fig,
        distribution_figure=figures.score_distribution_figure(xk, disp, title=f"Score distribution by {name_text}"),
        permutation_figure=permutation_figure(perm, title=f"SPDD by {name_text} against its chance level"))


def _in_words(name: str, mv, level: float) -> str | None:
    """`fairviz.uncertainty.describe` of a distance (None without its uncertainty)."""
    if mv is None or getattr(mv, "detail", None) is None:
        return None
    return describe(name, {**mv.detail.to_dict(), "level": level})


_TESTS = {"z": "two-proportion z", "fisher": "Fisher exact"}


def rate_rows(df: pd.DataFrame) -> tuple:
    """A selection-rate table of `fairviz.significance` (one row per group) as `RateRow`s."""
    rows = []
    for rec in df.to_dict(orient="records"):
        tested = rec["test"] != ""
        test = _TESTS[rec["test"]] if tested else ("reference" if rec["reference"] else "—")
        rows.append(RateRow(
            group=theme.group_label(rec["group"]), n=int(rec["n"]), share=rec["share"], selected=int(rec["selected"]),
            rate=rec["rate"], impact_ratio=rec["impact_ratio"], excluded=bool(rec["excluded"]),
            fails=bool(rec["four_fifths_fail"]), small=bool(rec["small_group"]), test=test,
            p_value=rec["p_value"], significant=bool(rec["significant"]) if tested else None))
    return tuple(rows)


def _finest_rows(columns, audited: list[str]):
    """(name of the finest audited grouping, boolean (n,) rows where all its attributes are known).

    The intersection of every attribute when there is one: equal intersectional distributions
    make every attribute's groups equal too."""
    finest = max(audited, key=lambda k: (len(columns[k].attributes), columns[k].known.sum()))
    col = columns[finest]
    rows = col.known.copy()
    for a in col.attributes:
        rows &= columns[a].known
    return finest, rows


def repair_section(inputs: ReportInputs, columns, audited: list[str], random_state: int) -> RepairSection:
    """The effect of a full (θ = 1) and a partial (θ = 0.5) barycenter repair on every audited
    grouping inside the finest one, the trade-off over θ, and a held-out check of a `RepairMap`."""
    finest, rows = _finest_rows(columns, audited)
    col = columns[finest]
    x = inputs.scores[rows]
    g = col.codes[rows]  # integer codes: the repair and its numbers need no labels, only groups
    rmap = RepairMap(n_quantiles=None).fit(x, g)
    full = rmap.repaired_full(x, g)
    half = 0.5 * x + 0.5 * full
    yr = None if inputs.labels is None else inputs.labels[rows]
    table = []
    for name in audited:
        c = columns[name]
        if not set(c.attributes) <= set(col.attributes):
            continue
        s0, s5, s1 = _spdd_by(c.codes[rows], (x, half, full))
        if not math.isnan(s0):
            table.append(RepairRow(name, s0, s5, s1, 1.0 - s1 / s0 if s0 > 0 else float("nan")))
    # θ = 0.5 among the drawn strengths: the accuracy rows are rows of the trade-off table
    trade = repair_tradeoff(x, g, yr, strengths=(0.0, 0.25, 0.5, 0.75, 1.0), repair_map=rmap,
                            repaired=full)
    accuracy = None
    if yr is not None:
        at = trade.set_index("strength")
        accuracy = tuple(AccuracyRow(label, float(at.at[t, "pcc"]), float(at.at[t, "srcc"]), float(at.at[t, "speo"]))
                         for label, t in (("original", 0.0), ("θ = 0.5", 0.5), ("θ = 1", 1.0)))
    first = col.attributes[0]
    g_first = np.asarray(columns[first].values(known_only=False)[rows], dtype=object)
    before, after, error = _heldout(x, col.values(known_only=False)[rows], random_state)
    return RepairSection(
        by=finest, first_attribute=first, n_rows=int(rows.sum()), rows=tuple(table), accuracy=accuracy,
        tradeoff_figure=repair_tradeoff_figure(
            trade, title=f"Repair by {theme.plotly_text(finest)}: SPDD and accuracy against θ"),
        distribution_figure=figures.score_distribution_figure(
            full, g_first, reference_scores=x, reference_name="before repair",
            title=f"Scores by {theme.plotly_text(first)} after the full repair (θ = 1); dotted: before"),
        heldout_before=before, heldout_after=after, heldout_error=error)


def _spdd_by(codes: np.ndarray, versions) -> tuple[float, ...]:
    """SPDD of each scores array in ``versions`` (each (n,)) by the group ``codes`` (n,), the
    groups encoded once; NaN for all when fewer than two groups have rows."""
    present = np.flatnonzero(np.bincount(codes, minlength=int(codes.max()) + 1))
    if len(present) < 2:
        return tuple(float("nan") for _ in versions)
    dense = np.searchsorted(present, codes)  # codes 0..k−1 of the groups with rows
    counts = np.bincount(dense, minlength=len(present))
    return tuple(metrics.PreparedAudit.from_codes(v, dense, tuple(range(len(present))), None, counts).spdd()
                 for v in versions)


def _heldout(x: np.ndarray, g: np.ndarray, random_state: int):
    """(SPDD before, after, None) on a random half repaired by a `RepairMap` fitted on the other
    half, or (None, None, why) when that is not possible (a group absent from one half)."""
    rng = np.random.default_rng(random_state)
    fit = rng.random(len(x)) < 0.5
    try:
        hm = RepairMap().fit(x[fit], g[fit])
        before = metrics.spdd(x[~fit], g[~fit])
        after = metrics.spdd(hm.transform(x[~fit], g[~fit]), g[~fit])
    except ValueError as err:
        return None, None, str(err)
    return before, after, None
