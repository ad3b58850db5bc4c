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

Every user-provided string (file and column names, group values, free text) is HTML-escaped once
in tables and text; figures escape it for Plotly (`fairviz.theme.plotly_text`), and plotly
serialises figure data with ``<``/``>`` escaped, so a CSV cannot inject script and a group such as
``<40`` is shown as written everywhere.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fairviz import theme
from fairviz.metrics import FOUR_FIFTHS

__all__ = ["build_report", "auto_n_perm", "data_fingerprint"]


# ------------------------------------------------------------------------------ formatting
def esc(value: Any) -> str:
    """HTML-escape anything (quotes too)."""
    return html.escape(str(value), quote=True)


def _num(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    try:
        f = float(v)
    except (TypeError, ValueError):
        return esc(v)
    if not math.isfinite(f):
        return "—"
    if f == int(f) and abs(f) >= 1 and digits == 0:
        return f"{int(f):,}"
    return f"{f:.{digits}f}"


def _int(v: Any) -> str:
    return f"{int(v):,}"


def _pval(p: Any) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "—"
    p = float(p)
    return "&lt; 0.001" if p < 0.001 else f"{p:.3f}"


def _ci(mv: Any, digits: int = 4) -> str:
    if mv is None:
        return "—"
    return f"{_num(mv.value, digits)} <span class='ci'>[{_num(mv.ci_low, digits)}, {_num(mv.ci_high, digits)}]</span>"


_DISTANCE_CI_NOTE = "exact; CI: lower end 0 unless the permutation test rejects (docs/STATISTICS.md)"


def _in_words(name: str, mv: Any, level: float) -> str:
    """`fairviz.uncertainty.describe` of a distance, escaped ("—" without its uncertainty)."""
    from fairviz.uncertainty import describe

    if mv is None or getattr(mv, "detail", None) is None:
        return "—"
    return esc(describe(name, {**mv.detail.to_dict(), "level": level}))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, cls: str = "") -> str:
    """Cells are already-safe HTML fragments (escape user text before passing it)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _group_cell(g: Any) -> str:
    """A group label as a table cell: its plain text, HTML-escaped once (figures escape for
    Plotly themselves, through `theme.group_name`)."""
    return esc(theme.group_label(g))


# ------------------------------------------------------------------------------ inputs
def _resolve_inputs(data, attributes, labels, score, groups, label):
    """-> scores (n,), {attribute: values}, labels or None, {"score": name, "label": name}."""
    names = {"score": "score", "label": None}
    if isinstance(data, pd.DataFrame) or (isinstance(data, Mapping) and isinstance(score, str)):
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(dict(data))
        if not isinstance(score, str):
            raise ValueError("with a table, `score` must be the name of the score column")
        group_cols = [groups] if isinstance(groups, str) else list(groups or [])
        if not group_cols:
            raise ValueError("name at least one group column (groups=...)")
        wanted = [score, *group_cols] + ([label] if label else [])
        missing = [c for c in wanted if c not in frame.columns]
        if missing:
            raise ValueError(f"no column(s) {missing} in the table; its columns are {list(map(str, frame.columns))}")
        if len(set(wanted)) != len(wanted):
            raise ValueError("the score, group and label columns must all be different")
        scores = _numeric(frame[score], score)
        y = _numeric(frame[label], label) if label else None
        attrs = {str(c): frame[c].to_numpy() for c in group_cols}
        names.update(score=str(score), label=None if label is None else str(label))
        return scores, attrs, y, names
    scores = data if data is not None else score
    if scores is None:
        raise ValueError("pass a table with score=/groups= column names, or scores and attributes")
    attrs = attributes if attributes is not None else groups
    if attrs is None:
        raise ValueError("pass the group attribute(s): a dict {name: values}, a DataFrame or one array")
    y = labels if labels is not None else (label if label is not None and not isinstance(label, str) else None)
    scores = _numeric(pd.Series(np.asarray(scores).reshape(-1)), "score")
    if y is not None:
        y = _numeric(pd.Series(np.asarray(y).reshape(-1)), "label")
    if isinstance(attrs, pd.DataFrame):
        attrs = {str(c): attrs[c].to_numpy() for c in attrs.columns}
    elif isinstance(attrs, Mapping):
        attrs = {str(k): np.asarray(v, dtype=object) if not isinstance(v, (pd.Series, np.ndarray)) else v
                 for k, v in attrs.items()}
    else:
        name = getattr(attrs, "name", None) or "group"
        attrs = {str(name): attrs}
    return scores, attrs, y, names


def _numeric(col: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(col, errors="coerce")
    bad = values.isna() & col.notna()
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"column {name!r} has {int(bad.sum()):,} value(s) that are not numbers "
                         f"(first at row {first}: {col.iloc[first]!r})")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def data_fingerprint(scores: np.ndarray, attributes: Mapping[str, Any], labels: np.ndarray | None) -> str:
    """SHA-256 of the audited columns in a canonical form (float64 bytes, attribute values as text)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(scores, dtype=np.float64).tobytes())
    if labels is not None:
        h.update(b"labels")
        h.update(np.ascontiguousarray(labels, dtype=np.float64).tobytes())
    for name, values in attributes.items():
        h.update(b"\x00attr\x00" + str(name).encode("utf-8"))
        h.update("\x1f".join(map(str, np.asarray(values, dtype=object).tolist())).encode("utf-8"))
    return h.hexdigest()


#: Cost per row of SPDD's permutations through `fairviz.permute` relative to the generic path
#: (bench/RESULTS.md): two groups, and 3 to 16 groups.
FAST_PERM_COST = {2: 0.1, "more": 0.5}


def auto_n_perm(n: int, n_groups: int, *, budget: float = 1.5e8, low: int = 50, high: int = 1000,
                metric: str = "spdd") -> int:
    """Permutations for a permutation test within a work budget (rows × groups × permutations;
    SPDD's fast path counts `FAST_PERM_COST` per row). The smallest p-value is 1 / (result + 1)."""
    from fairviz.significance import FAST_PERM_MAX_GROUPS

    factor = 1.0
    if metric == "spdd" and n_groups <= FAST_PERM_MAX_GROUPS:
        factor = FAST_PERM_COST[2] if n_groups == 2 else FAST_PERM_COST["more"]
    cost = n * max(1, n_groups - 1) * factor
    return int(np.clip(budget / max(1.0, cost), low, high))


# ------------------------------------------------------------------------------ figures
_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True,
                  "modeBarButtonsToRemove": ["select2d", "lasso2d"]}


class _FigureWriter:
    """Turns figures into <div>s; plotly.js is inlined with the first one only."""

    def __init__(self) -> None:
        self.first = True
        self.count = 0

    def __call__(self, fig) -> str:
        self.count += 1
        out = fig.to_html(full_html=False, include_plotlyjs=self.first, config=_PLOTLY_CONFIG,
                          div_id=f"fig{self.count}")
        self.first = False
        return f"<div class='figure'>{out}</div>"


# ------------------------------------------------------------------------------ main entry
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
) -> str:
    """The complete audit as one self-contained HTML document (str).

    Two ways to call it:

    - a table and column names: ``build_report(df, score="score", groups=["sex", "race"],
      label="label", source_name="scores.csv", source_bytes=raw_bytes)``;
    - arrays: ``build_report(scores, {"sex": sex, "race": race}, labels)`` (attributes may also
      be a DataFrame or one array).

    tau: the threshold of the four-fifths check; n_boot / level: bootstrap intervals (metrics and
    the DP(τ) band); n_perm: permutations per attribute (None: as many as fit a fixed work
    budget, 50–1000); intersections: also audit the intersection of all attributes;
    exclude_small: leave groups under 2 % out of the impact ratios (LL144); source: free text
    shown under the data description; progress(stage) is called as sections are computed;
    max_groups: refuse a grouping with more groups than this (an ID column picked by mistake).
    Bad input raises ValueError (the same messages as `fairviz.groups.audit_attributes`).
    """
    from fairviz import __version__, figures, metrics
    from fairviz.groups import audit_attributes, prepare_groups
    from fairviz.repair import RepairMap, repair_tradeoff
    from fairviz.report_figures import add_dp_band, permutation_figure, repair_tradeoff_figure
    from fairviz.significance import dp_band, permutation_test

    say = progress or (lambda stage: None)
    tau = float(tau)
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must be in [0, 1]; got {tau!r}")
    scores, attrs, y, names = _resolve_inputs(data, attributes, labels, score, groups, label)
    n = len(scores)
    for k, v in attrs.items():
        if len(v) != n:
            raise ValueError(f"attribute {k!r} has {len(v)} values but there are {n} scores")

    columns = prepare_groups(attrs, n, intersections=intersections)
    for name, col in columns.items():
        if len(col.labels) > max_groups:
            raise ValueError(
                f"{name!r} has {len(col.labels):,} distinct groups (more than {max_groups}); a group column "
                "should hold a few values such as sex or race — is it an ID or a numeric column? "
                "(or leave out intersections)")
    say("auditing every attribute")
    multi = audit_attributes(scores, attrs, y, intersections=intersections, n_boot=n_boot, level=level,
                             random_state=random_state, tau=tau, alpha=alpha, exclude_small=exclude_small)
    when = (generated_at or _dt.datetime.now(_dt.timezone.utc)).replace(microsecond=0)
    fig_html = _FigureWriter()

    # -------------------------------------------------------------- per-attribute sections
    sections, perms, toc = [], {}, []
    for idx, (name, res) in enumerate(multi.results.items()):
        say(f"attribute {name}")
        col = columns[name]
        known = col.known
        xk = scores[known]
        disp = col.values(known_only=True)  # labels as written: figures escape them for Plotly
        k_perm = n_perm if n_perm is not None else auto_n_perm(len(xk), len(col.labels))
        perm = permutation_test(xk, col.codes[known], metric="spdd", n_perm=k_perm, random_state=random_state)
        perms[name] = perm
        perm_speo = None
        if y is not None:
            # SPEO's statistic costs about four times SPDD's per permutation: a quarter budget
            k_speo = n_perm if n_perm is not None else auto_n_perm(len(xk), len(col.labels), budget=0.4e8,
                                                                   metric="speo")
            perm_speo = permutation_test(xk, col.codes[known], y[known], metric="speo",
                                         n_perm=k_speo, random_state=random_state)
        curve = metrics.dp_curve(xk, disp)
        band = dp_band(curve, [res.group_counts[g] for g in col.labels], n_boot=max(int(n_boot), 200),
                       level=level, random_state=random_state)
        dp_fig = figures.dp_curve_figure(curve, tau=tau, spdd=res.spdd_max_min,
                                         title=f"DP(τ) by {theme.plotly_text(name)}: gap in selection rate at every threshold")
        add_dp_band(dp_fig, band)
        dist_fig = figures.score_distribution_figure(xk, disp, title=f"Score distribution by {theme.plotly_text(name)}")
        anchor = f"attr{idx}"
        toc.append((anchor, name))
        sections.append(_attribute_section(anchor, res, perm, perm_speo, fig_html(dp_fig), fig_html(dist_fig),
                                           fig_html(permutation_figure(perm, title=f"SPDD by {theme.plotly_text(name)} against its chance level")),
                                           y is not None, alpha, tau, level, multi.n_boot))

    # -------------------------------------------------------------- repair
    say("repair")
    repair_html = _repair_section(scores, y, attrs, columns, multi, names, fig_html, random_state,
                                  figures, metrics, RepairMap, repair_tradeoff, repair_tradeoff_figure)

    # -------------------------------------------------------------- assemble
    say("writing the report")
    if source_bytes is not None:
        digest = hashlib.sha256(source_bytes).hexdigest()
        digest_note = "SHA-256 of the source file"
    else:
        digest = data_fingerprint(scores, attrs, y)
        digest_note = "SHA-256 of the audited columns (canonical form; no file bytes were given)"
    title_text = title or f"fairviz bias audit{' — ' + source_name if source_name else ''}"
    parts = [
        _head(title_text),
        f"<header><h1>{esc(title_text)}</h1><p class='sub'>Generated {esc(when.isoformat())} by fairviz "
        f"{esc(__version__)}. Threshold-free parity for continuous scores: DP(τ) at every threshold, its "
        "area SPDD, NYC Local Law 144 tables, four-fifths checks with significance, and a fair repair.</p></header>",
        _toc(toc),
        _data_section(n, names, attrs, columns, multi, source_name, digest, digest_note, source, y, scores),
        _summary_section(multi, perms, y is not None),
        *sections,
        repair_html,
        _methods_section(multi, perms, level, alpha),
        "</main></body></html>",
    ]
    return "\n".join(parts)


# ------------------------------------------------------------------------------ sections
_CSS = """
body{font-family:Inter,'Source Sans Pro','Helvetica Neue',Arial,sans-serif;color:#222;margin:0;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:28px;margin:8px 0}h2{font-size:22px;margin-top:40px;border-bottom:2px solid #0072B2;padding-bottom:4px}
h3{font-size:17px;margin-top:24px}.sub{color:#555}.ci{color:#666;font-size:90%}
table{border-collapse:collapse;margin:10px 0 16px;font-size:14px}th,td{border:1px solid #ddd;padding:4px 9px;text-align:right}
th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}
.flag{color:#B33C00;font-weight:600}.ok{color:#006B4F}.note{color:#555;font-size:14px;max-width:900px}
.figure{margin:8px 0 18px}nav ul{columns:2;font-size:14px}code{background:#f3f3f3;padding:0 3px}
"""


def _head(title: str) -> str:
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body><main>")


def _toc(items) -> str:
    links = "".join(f"<li><a href='#{a}'>{esc(n)}</a></li>" for a, n in items)
    return ("<nav><h2>Contents</h2><ul><li><a href='#data'>Data</a></li><li><a href='#summary'>Summary</a></li>"
            f"{links}<li><a href='#repair'>Repair</a></li><li><a href='#methods'>Methods: exact and estimated"
            "</a></li></ul></nav>")


def _data_section(n, names, attrs, columns, multi, source_name, digest, digest_note, source, y, scores) -> str:
    rows = [
        ["Source file", esc(source_name) if source_name else "— (data passed directly)"],
        [esc(digest_note), f"<code>{esc(digest)}</code>"],
        ["Rows", _int(n)],
        ["Score column", esc(names["score"]) + f" <span class='ci'>(min {_num(scores.min(), 3)}, mean "
                                              f"{_num(scores.mean(), 3)}, max {_num(scores.max(), 3)})</span>"],
        ["Label column", esc(names["label"]) if names["label"] else ("given" if y is not None else "— (SPEO, PCC, SRCC need labels)")],
        ["Group attributes", ", ".join(esc(a) for a in attrs)],
    ]
    attr_rows = []
    for name, col in columns.items():
        res = multi.results.get(name)
        status = "audited" if res is not None else f"<span class='flag'>skipped: {esc(multi.skipped.get(name, ''))}</span>"
        attr_rows.append([esc(name), _int(int(col.known.sum())), _int(col.n_missing), _int(len(col.labels)),
                          esc(", ".join(str(g) for g in (res.small_groups if res else ()))) or "—", status])
    extra = f"<p class='note'>{esc(source)}</p>" if source else ""
    return ("<section id='data'><h2>Data</h2>" + _table(["", ""], rows) + extra +
            "<h3>Attributes</h3><p class='note'>Rows whose attribute is missing (an empty cell, NaN; "
            "other values only when the caller names them) are left out of that attribute's numbers "
            "and counted here. Groups under 2 % of the known rows are flagged small (NYC LL144 allows leaving them out of impact ratios; their "
            "counts are always shown).</p>" +
            _table(["attribute", "rows used", "missing / unknown", "groups", "small groups (< 2 %)", "status"],
                   attr_rows) + "</section>")


def _summary_section(multi, perms, has_labels: bool) -> str:
    header = ["attribute", "n", "groups", "SPDD ∫(max−min) [CI]", "largest pairwise W1", "mean W1 to pooled",
              "permutation p", "chance level (95 %)", "lowest LL144 impact ratio"]
    if has_labels:
        header += ["SPEO [CI]", "PCC [CI]", "SRCC [CI]"]
    rows = []
    for name, r in multi.results.items():
        p = perms[name]
        sr = r.scoring_rates
        ratios = sr.loc[~sr["excluded"], "impact_ratio"]
        low = float(ratios.min()) if ratios.notna().any() else float("nan")
        low_txt = _num(low, 3)
        if math.isfinite(low) and low < FOUR_FIFTHS:
            low_txt = f"<span class='flag'>{low_txt}</span>"
        row = [esc(name), _int(r.n), _int(len(r.groups)), _ci(r.audit.spdd), _num(r.spdd), _num(r.spdd_mean_to_pooled),
               _pval(p.p_value), _num(p.null_quantiles.get(0.95)), low_txt]
        if has_labels:
            row += [_ci(r.audit.speo), _ci(r.audit.pcc), _ci(r.audit.srcc)]
        rows.append(row)
    return ("<section id='summary'><h2>Summary</h2><p class='note'>SPDD is the area under DP(τ), the gap in "
            "selection rate between the most and least selected group at threshold τ, over all τ in [0, 1] "
            "(0 = the same rate at every threshold). With two groups it equals the 1-Wasserstein distance "
            "between the group score distributions, and all three SPDD columns agree. With more groups, "
            "∫(max−min) ≥ largest pairwise W1 ≥ mean W1 to pooled (see Methods). The chance level is the "
            "95th percentile of SPDD with group labels shuffled: values below it are what these group "
            "sizes give by chance.</p>" + _table(header, rows) + "</section>")


def _rate_rows(df: pd.DataFrame, alpha: float) -> list[list[str]]:
    rows = []
    for rec in df.to_dict(orient="records"):
        ratio = rec["impact_ratio"]
        ratio_txt = _num(ratio, 3)
        if rec["excluded"]:
            ratio_txt = "excluded (&lt; 2 %)"
        elif rec["four_fifths_fail"]:
            ratio_txt = f"<span class='flag'>{ratio_txt}</span>"
        test = {"z": "two-proportion z", "fisher": "Fisher exact", "": "reference" if rec["reference"] else "—"}[rec["test"]]
        sig = "—" if rec["test"] == "" else ("<span class='flag'>yes</span>" if rec["significant"] else "no")
        rows.append([_group_cell(rec["group"]), _int(rec["n"]), _num(100 * rec["share"], 1) + " %",
                     _int(rec["selected"]), _num(rec["rate"], 3), ratio_txt,
                     "<span class='flag'>small</span>" if rec["small_group"] else "", test, _pval(rec["p_value"]), sig])
    return rows


_RATE_HEADER = ["group", "n", "share", "selected", "rate", "impact ratio", "< 2 %", "test vs highest",
                "p-value", "significant"]


def _attribute_section(anchor, res, perm, perm_speo, dp_div, dist_div, perm_div, has_labels, alpha, tau, level, n_boot) -> str:
    counts = _table(["group", "n", "share", "W1 to pooled"],
                    [[_group_cell(g), _int(c), _num(100 * c / max(res.n, 1), 1) + " %", _num(res.w1_to_pooled[g])]
                     for g, c in res.group_counts.items()])
    a = res.audit
    metric_rows = [["SPDD = ∫(max−min) DP(τ) dτ", _ci(a.spdd), _DISTANCE_CI_NOTE],
                   ["SPDD in words", _in_words("SPDD", a.spdd, level), "see Methods"],
                   ["SPDD, largest pairwise W1", _num(res.spdd) + f" <span class='ci'>({_group_cell(res.spdd_pair[0])} vs "
                    f"{_group_cell(res.spdd_pair[1])})</span>", "exact"],
                   ["SPDD, mean W1 to pooled", _num(res.spdd_mean_to_pooled), "exact"],
                   ["SPDD on the paper's 50-point grid", _num(a.spdd_grid50), "exact"],
                   ["Permutation p-value (SPDD)", _pval(perm.p_value), f"Monte Carlo, {perm.n_perm} permutations"],
                   ["Chance level of SPDD (median; 95 %)", f"{_num(perm.null_quantiles.get(0.5))}; {_num(perm.null_quantiles.get(0.95))}",
                    "permutation null"]]
    if has_labels:
        metric_rows += [["SPEO", _ci(a.speo), _DISTANCE_CI_NOTE],
                        ["SPEO in words", _in_words("SPEO", a.speo, level), "see Methods"]]
        if perm_speo is not None:
            metric_rows += [["Permutation p-value (SPEO); chance level (95 %)",
                             f"{_pval(perm_speo.p_value)}; {_num(perm_speo.null_quantiles.get(0.95))}",
                             f"Monte Carlo, {perm_speo.n_perm} permutations"]]
        metric_rows += [["PCC", _ci(a.pcc), "exact; CI: bootstrap"], ["SRCC", _ci(a.srcc), "exact; CI: bootstrap"]]
    favoured = ", ".join(f"{_group_cell(g)}: {_num(v)}" for g, v in a.spdd_parts.items())
    groups = list(res.groups)
    pw = res.pairwise_w1
    pw_table = _table([""] + [_group_cell(g) for g in groups],
                      [[_group_cell(g)] + [_num(pw.loc[g, h]) for h in groups] for g in groups])
    impact = res.impact_ratios
    fails = impact.loc[impact["four_fifths_fail"]] if impact is not None else pd.DataFrame()
    sig_fails = fails.loc[fails["significant"]] if len(fails) else fails
    verdict = ("<p class='ok'>No group's impact ratio is under 0.8 at τ = " + _num(tau, 2) + ".</p>") if not len(fails) else (
        f"<p class='flag'>{len(fails)} group(s) under 0.8 at τ = {_num(tau, 2)}; {len(sig_fails)} of them with a "
        f"statistically significant difference (p &lt; {alpha:g}).</p>")
    small_note = ""
    if res.small_groups:
        small_note = ("<p class='note flag'>Small groups (" + esc(", ".join(map(str, res.small_groups))) +
                      "): few rows, so their intervals are wide and their tests have little power; read their "
                      "numbers with the n next to them.</p>")
    return (
        f"<section id='{anchor}'><h2>{esc(res.name)}</h2>"
        f"<p class='note'>{_int(res.n)} rows with a known value; {_int(res.n_missing)} missing/unknown excluded.</p>"
        + small_note + "<h3>Groups</h3>" + counts
        + f"<h3>Metrics ({level:.0%} bootstrap intervals, {n_boot} resamples within groups)</h3>"
        + _table(["metric", "value [CI]", "how"], metric_rows)
        + f"<p class='note'>Where the gap sits (area of SPDD where each group has the highest selection rate): {favoured}.</p>"
        + "<h3>DP(τ) at every threshold</h3>" + dp_div
        + "<h3>Score distributions</h3>" + dist_div
        + "<h3>Pairwise W1 between groups</h3>" + pw_table
        + "<h3>NYC Local Law 144 scoring rates</h3><p class='note'>Scoring rate: share of the group scoring above "
          "the median of all rows with a known value; impact ratio: scoring rate over the highest group's. Each "
          "group is tested against the highest group (two-proportion z-test, or Fisher's exact test when an "
          "expected count is under 5).</p>"
        + _table(_RATE_HEADER, _rate_rows(res.scoring_rates, alpha))
        + f"<h3>Four-fifths check at τ = {_num(tau, 2)}</h3>" + verdict
        + (_table(_RATE_HEADER, _rate_rows(impact, alpha)) if impact is not None else "")
        + "<h3>Is the gap more than chance?</h3>" + perm_div
        + "</section>"
    )


def _repair_section(scores, y, attrs, columns, multi, names, fig_html, random_state, figures, metrics,
                    RepairMap, repair_tradeoff, repair_tradeoff_figure) -> str:
    # Repair on the finest audited grouping: the intersection of every attribute when there is
    # one (equal intersectional distributions make every attribute's groups equal too).
    audited = list(multi.results)
    finest = max(audited, key=lambda k: (len(columns[k].attributes), columns[k].known.sum()))
    col = columns[finest]
    rows = col.known.copy()
    for a in col.attributes:
        rows &= columns[a].known
    x = scores[rows]
    g = col.values(known_only=False)[rows]
    rmap = RepairMap(n_quantiles=None).fit(x, g)
    full = rmap.repaired_full(x, g)
    half = 0.5 * x + 0.5 * full
    yr = None if y is None else y[rows]
    header = ["attribute", "SPDD original", "SPDD θ = 0.5", "SPDD θ = 1", "removed at θ = 1"]
    table_rows = []
    for name in audited:
        c = columns[name]
        if not set(c.attributes) <= set(col.attributes):
            continue
        gv = c.values(known_only=False)[rows]
        if len(set(gv.tolist())) < 2:
            continue
        s0, s5, s1 = (metrics.spdd(v, gv) for v in (x, half, full))
        removed = 1.0 - s1 / s0 if s0 > 0 else float("nan")
        table_rows.append([esc(name), _num(s0), _num(s5), _num(s1), _num(100 * removed, 1) + " %"])
    acc = ""
    if yr is not None:
        acc_rows = []
        for label_txt, v in (("original", x), ("θ = 0.5", half), ("θ = 1", full)):
            acc_rows.append([label_txt, _num(metrics.pcc(v, yr)), _num(metrics.srcc(v, yr)), _num(metrics.speo(v, yr, g))])
        acc = "<h3>Accuracy against the labels</h3>" + _table(["scores", "PCC", "SRCC", f"SPEO by {esc(finest)}"], acc_rows)
    trade = repair_tradeoff(x, g, yr, strengths=np.linspace(0.0, 1.0, 6), repair_map=rmap)
    trade_div = fig_html(repair_tradeoff_figure(trade, title=f"Repair by {theme.plotly_text(finest)}: SPDD and accuracy against θ"))
    # the distributions of the first attribute before/after the full repair
    first = col.attributes[0]
    g_first = columns[first].values(known_only=False)[rows]
    disp = np.asarray(g_first, dtype=object)
    dist_div = fig_html(figures.score_distribution_figure(
        full, disp, reference_scores=x, reference_name="before repair",
        title=f"Scores by {theme.plotly_text(first)} after the full repair (θ = 1); dotted: before"))
    # held-out: fit on a random half, apply to the other half
    rng = np.random.default_rng(random_state)
    fit = rng.random(len(x)) < 0.5
    held = ""
    try:
        hm = RepairMap().fit(x[fit], g[fit])
        before = metrics.spdd(x[~fit], g[~fit])
        after = metrics.spdd(hm.transform(x[~fit], g[~fit]), g[~fit])
        held = (f"<p class='note'>Held-out check: a <code>RepairMap</code> fitted on a random half of these rows "
                f"and applied to the other half takes SPDD by {esc(finest)} there from {_num(before)} to "
                f"{_num(after)} ({_num(100 * (1 - after / before), 1) if before > 0 else '—'} % removed).</p>")
    except ValueError as err:  # a group absent from one half
        held = f"<p class='note'>Held-out check not possible: {esc(err)}</p>"
    return (
        "<section id='repair'><h2>Fair repair: effect of a full and a partial repair</h2>"
        "<p class='note'>Each score is moved to the Wasserstein barycenter of the group score distributions "
        "(its within-group quantile, mid-rank for ties, is mapped to the group-share-weighted mean of the "
        "groups' quantile functions; Chzhen et al. 2020). θ interpolates between the original scores (0) and "
        f"the fully repaired ones (1). Repaired by <b>{esc(finest)}</b>, on the {_int(rows.sum())} rows where "
        "every attribute is known; the order of candidates within a group never changes. For two groups "
        "SPDD falls linearly in θ.</p>"
        + _table(header, table_rows) + acc + trade_div + dist_div + held + "</section>"
    )


def _methods_section(multi, perms, level, alpha) -> str:
    n_perm = sorted({p.n_perm for p in perms.values()})
    rows = [
        ["DP(τ), SPDD (∫ max−min), selection rates, impact ratios, LL144 scoring rates, counts", "exact",
         "computed from one sort of the scores; no threshold grid"],
        ["Pairwise W1, largest pairwise W1, mean W1 to pooled", "exact", "merged empirical CDFs of sorted samples"],
        ["SPEO, PCC, SRCC, SPDD on the 50-point grid", "exact", "on the given labels"],
        ["Intervals on PCC, SRCC", "estimate",
         f"percentile bootstrap, {multi.n_boot} resamples within each group, level {level:.0%}"],
        ["Intervals and upper bounds on SPDD, SPEO (distances)", "estimate",
         f"upper bound: the {level:.0%} quantile of {multi.n_boot} resamples within each group; interval: "
         "lower end 0 unless a permutation test rejects “no difference”, otherwise the smaller of "
         "value − the null's upper quantile and the basic bootstrap end. A distance measured on a sample is "
         "biased upward, so a percentile interval would never contain a fair model's 0; coverage measured "
         "in docs/STATISTICS.md. “Once chance is taken out”: √(value² − chance mean²)."],
        ["Band around DP(τ)", "estimate",
         f"pointwise percentile bootstrap within groups at each τ (the resampled count above τ is binomial), level {level:.0%}"],
        ["p-values of the rate tables", "estimate / exact",
         "two-proportion z-test (normal approximation, pooled variance, two-sided) vs the highest-rate group; "
         "Fisher's exact test (exact, conditional) when an expected cell count is under 5"],
        ["Permutation p-values and chance levels of SPDD (and SPEO with labels)", "estimate",
         f"Monte Carlo permutation test, group labels shuffled ({', '.join(map(str, n_perm))} permutations; "
         "p = (1 + #null ≥ observed) / (1 + permutations))"],
        ["Repaired scores and their metrics", "exact", "in-sample barycenter map; the held-out check is one random split"],
    ]
    return (
        "<section id='methods'><h2>Methods: what is exact and what is estimated</h2>"
        + _table(["quantity", "exact or estimate", "method"], rows)
        + "<p class='note'>Several groups. ∫(max−min) DP(τ) dτ charges, at every threshold, the gap between "
          "whichever groups are then the most and least selected; pointwise this is at least |F<sub>a</sub> − "
          "F<sub>b</sub>| for every pair, so it is ≥ the largest pairwise W1, with equality for two groups or when "
          "the same pair is extreme at every τ. The largest pairwise W1 is the worst single comparison; the mean "
          "W1 to the pooled distribution is the typical group's distance from everyone, and is at most the "
          "largest pairwise value. Small groups give wide intervals: read every number with its n.</p>"
        + f"<p class='note'>Significance level for the “significant” column: {alpha:g}. A four-fifths "
          "failure that is not significant may be noise; a significant difference with a ratio above 0.8 may "
          "still matter in practice (the EEOC guidelines consider both).</p></section>"
    )
