"""fairviz.report + `python -m fairviz report`: one self-contained, escaped HTML file."""

from __future__ import annotations

import fnmatch
import hashlib
import html as html_mod
import os
import re
import tomllib
from pathlib import Path

import markupsafe
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from fairviz import metrics
from fairviz import report as report_package
from fairviz.cli import main
from fairviz.repair_tradeoff import repair_tradeoff
from fairviz.report import ReportSettings, auto_n_perm, build_report, compute_report, data_fingerprint, render
from fairviz.report._inputs import resolve_inputs
from fairviz.report_figures import add_dp_band, permutation_figure, repair_tradeoff_figure
from fairviz.significance import dp_band, permutation_test

EVIL = "<script>alert(1)</script>"
EVIL_COLUMN = "race\"><img src=x onerror=alert(2)>"
FAST = dict(n_boot=30, n_perm=30)


def audit_frame(rng, n=800):
    sex = rng.choice(["F", "M", EVIL], n, p=[0.49, 0.49, 0.02])
    race = rng.choice(["A", "B", "unknown", ""], n, p=[0.5, 0.4, 0.05, 0.05])
    score = np.clip(rng.beta(2, 4, n) + 0.15 * (sex == "M"), 0, 1)
    label = np.clip(score + rng.normal(0, 0.15, n), 0, 1)
    return pd.DataFrame({"score": score, "sex": sex, EVIL_COLUMN: race, "label": label})


@pytest.fixture(scope="module")
def report_html():
    rng = np.random.default_rng(7)
    df = audit_frame(rng)
    raw = df.to_csv(index=False).encode()
    html = build_report(df, score="score", groups=["sex", EVIL_COLUMN], label="label",
                        source_name=f"scores{EVIL}.csv", source_bytes=raw, **FAST)
    return html, raw, df


def test_one_self_contained_file(report_html):
    html, _, _ = report_html
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert html.count("<html") == 1
    # plotly.js inlined exactly once, nothing fetched from the network
    js = get_plotlyjs()
    assert html.count(js[:200]) == 1
    assert not re.search(r"<script[^>]+src\s*=", html, flags=re.I)
    assert not re.search(r"<link[^>]+href\s*=\s*['\"]?https?:", html, flags=re.I)
    assert "cdn.plot.ly/plotly" not in html.replace(js, "")


def test_no_script_injection_from_csv_values_or_names(report_html):
    html, _, _ = report_html
    assert EVIL not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown, as text


def test_contents(report_html):
    html, raw, df = report_html
    assert hashlib.sha256(raw).hexdigest() in html
    assert f"{len(df):,}" in html
    for needle in ("Data", "Summary", "DP(τ)", "NYC Local Law 144", "Four-fifths check at τ = 0.50",
                   "permutation", "chance level", "θ = 0.5", "θ = 1", "bootstrap", "Fisher",
                   "two-proportion", "exact", "estimate", "sex × race", "Pairwise W1", "Held-out check",
                   "SPDD in words", "with 95 % confidence at most", "from chance",
                   "Intervals from the exact bootstrap"):
        assert needle.lower() in html.lower(), needle
    # missing race values (empty cells; "unknown" is a group of its own) are counted in the data section
    n_unknown = int(df[EVIL_COLUMN].isin([""]).sum())
    assert f"<td>{n_unknown:,}</td>" in html
    # the date and the version
    assert re.search(r"Generated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", html)


def test_arrays_call_like_the_app(rng):
    n = 400
    scores = rng.random(n)
    attrs = {"sex": rng.choice(["F", "M"], n)}
    html = build_report(scores, attrs, None, source="uploaded `x.csv`", title="fairviz audit — x.csv", **FAST)
    assert "fairviz audit — x.csv" in html and "uploaded `x.csv`" in html
    assert data_fingerprint(scores, attrs, None) in html  # no file bytes: a hash of the columns


def test_bad_input_is_a_value_error(rng):
    df = pd.DataFrame({"score": [0.1, 0.5, 1.5, 0.3], "g": ["a", "b", "a", "b"]})
    with pytest.raises(ValueError, match="outside|\\[0, 1\\]"):
        build_report(df, score="score", groups="g", **FAST)
    with pytest.raises(ValueError, match="no column"):
        build_report(df, score="nope", groups="g", **FAST)
    with pytest.raises(ValueError, match="group"):
        build_report(df, score="score", groups=[], **FAST)
    with pytest.raises(ValueError, match="distinct groups"):
        build_report(pd.DataFrame({"score": rng.random(300), "id": np.arange(300)}), score="score",
                     groups="id", **FAST)
    with pytest.raises(ValueError, match="tau"):
        build_report(df.assign(score=0.2), score="score", groups="g", tau=2, **FAST)


def test_auto_n_perm_budget():
    assert auto_n_perm(1000, 2) == 1000
    assert auto_n_perm(1_000_000, 2) == 1000  # two-group SPDD: the fast relabeling path
    assert auto_n_perm(1_000_000, 2, metric="speo") == 150
    assert auto_n_perm(10_000_000, 2) == 150
    assert auto_n_perm(10_000_000, 30) == 50
    assert auto_n_perm(100_000, 4) == 1000 and auto_n_perm(1_000_000, 4) == 100


# ------------------------------------------------------------------------------------ CLI
def _cli(argv):
    return main(argv)


def test_cli_writes_report_atomically(tmp_path, rng, capsys):
    df = audit_frame(rng, 500)
    src = tmp_path / "scores.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "out" / "audit.html"
    rc = _cli(["report", str(src), "--score", "score", "--group", "sex", "--group", EVIL_COLUMN,
               "--label", "label", "--out", str(out), "--n-boot", "30", "--n-perm", "30"])
    assert rc == 0
    html = out.read_text(encoding="utf-8")
    assert hashlib.sha256(src.read_bytes()).hexdigest() in html and "scores.csv" in html
    assert EVIL not in html
    assert [p.name for p in out.parent.iterdir()] == ["audit.html"]  # no temp file left
    assert str(out) in capsys.readouterr().out


@pytest.mark.parametrize("args,match", [
    (["--score", "nope", "--group", "sex"], "nope"),
    (["--score", "score", "--group", "nope"], "nope"),
    (["--score", "sex", "--group", "score"], "number"),
])
def test_cli_bad_input_exit_2(tmp_path, rng, capsys, args, match):
    df = audit_frame(rng, 100)
    src = tmp_path / "s.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "a.html"
    assert _cli(["report", str(src), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and match in err
    assert not out.exists()


def test_cli_missing_file_and_out_of_range(tmp_path, capsys):
    assert _cli(["report", str(tmp_path / "none.csv"), "--score", "s", "--group", "g",
                 "--out", str(tmp_path / "a.html")]) == 2
    assert "error:" in capsys.readouterr().err
    src = tmp_path / "bad.csv"
    pd.DataFrame({"s": [0.1, 2.0, 0.3, 0.4], "g": ["a", "a", "b", "b"]}).to_csv(src, index=False)
    assert _cli(["report", str(src), "--score", "s", "--group", "g", "--out", str(tmp_path / "a.html")]) == 2
    assert "error:" in capsys.readouterr().err


# ------------------------------------------------------------------------ report figures
def test_report_figures(rng):
    s = rng.random(300)
    g = rng.integers(0, 2, 300)
    y = np.clip(s + rng.normal(0, 0.1, 300), 0, 1)
    curve = metrics.dp_curve(s, g)
    fig = add_dp_band(go.Figure(), dp_band(curve, [int(np.sum(g == 0)), int(np.sum(g == 1))]))
    assert len(fig.data) == 2 and fig.data[1].fill == "tonexty" and "all τ at once" in fig.data[1].name
    perm = permutation_test(s, g, n_perm=40)
    pf = permutation_figure(perm)
    assert pf.layout.template.layout.font.family.startswith("Inter")  # the shared fairviz template
    assert any("observed SPDD" in (t.name or "") for t in pf.data)
    table = repair_tradeoff(s, g, y, strengths=[0, 0.5, 1])
    tf = repair_tradeoff_figure(table)
    names = [t.name for t in tf.data]
    assert names[0].startswith("SPDD") and any("PCC" in n for n in names)
    np.testing.assert_allclose(tf.data[0].y, table["spdd"])
    with pytest.raises(ValueError):
        repair_tradeoff_figure(table.iloc[:0])


AWKWARD = ["<40", ">55", "A&B \"q\" 's'"]


def test_cli_report_shows_group_names_exactly_in_tables_and_figures(tmp_path, rng):
    n = 900
    g = rng.choice(AWKWARD, n)
    df = pd.DataFrame({"score": np.clip(rng.random(n) + 0.1 * (g == "<40"), 0, 1), "age": g})
    src = tmp_path / "ages.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "a.html"
    assert _cli(["report", str(src), "--score", "score", "--group", "age", "--out", str(out),
                 "--n-boot", "20", "--n-perm", "20"]) == 0
    html = out.read_text(encoding="utf-8")
    for name in AWKWARD:  # every table cell holds the name HTML-escaped exactly once (by the templates)
        cell = f"<td>{markupsafe.escape(name)}</td>"
        assert cell in html and html_mod.unescape(cell) == f"<td>{name}</td>", name
    assert "&amp;lt;" not in html and "&amp;gt;" not in html and "&amp;quot;" not in html and "&amp;#34;" not in html
    assert "&amp;#39;" not in html
    # figures: names escaped for plotly only (&amp; &lt; &gt;), which it shows as written;
    # an entity for a quote would be shown literally by plotly
    assert '"name":"&lt;40' in html and '"name":"A&amp;B \\"q\\" \'s\'' in html
    figure_text = html.split("<table", 1)[0] + "".join(part.split("</script>", 1)[0] for part in html.split("<script")[1:])
    assert "&#34;q&#34;" not in figure_text and "&quot;q&quot;" not in figure_text


def test_cli_report_file_honours_the_umask(tmp_path, rng):
    df = audit_frame(rng, 300)
    src = tmp_path / "scores.csv"
    df.to_csv(src, index=False)
    out = tmp_path / "shared.html"
    old = os.umask(0o022)
    try:
        assert _cli(["report", str(src), "--score", "score", "--group", "sex", "--out", str(out),
                     "--n-boot", "20", "--n-perm", "20"]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644  # readable by the other users of a shared server


def test_cli_report_score_range_is_stated(tmp_path, rng, capsys):
    df = audit_frame(rng, 400)
    src = tmp_path / "pct.csv"
    df.assign(score=df.score * 100).to_csv(src, index=False)
    out = tmp_path / "r.html"
    base = ["report", str(src), "--score", "score", "--group", "sex", "--out", str(out), "--n-boot", "20", "--n-perm", "20"]
    assert _cli(base) == 2 and "outside [0, 1]" in capsys.readouterr().err
    assert _cli(base + ["--score-range", "0", "100"]) == 0
    html = out.read_text(encoding="utf-8")
    assert "Scores rescaled from [0, 100] to [0, 1]" in html
    assert _cli(base + ["--score-range", "1", "0"]) == 2 and "needs LOW < HIGH" in capsys.readouterr().err


# ------------------------------------------------------------------------ computation apart from drawing
def test_report_data_object_matches_independent_numbers(rng):
    """`compute_report`'s data object against scipy: for two groups SPDD is W1 between their scores."""
    from scipy.stats import wasserstein_distance  # noqa: PLC0415 - heavy, only this test needs it

    n = 600
    g = rng.choice(["a", "b"], n)
    s = np.clip(rng.beta(2, 3, n) + 0.1 * (g == "b"), 0, 1)
    report = compute_report(resolve_inputs(s, {"grp": g}, None, None, None, None), ReportSettings(n_boot=20, n_perm=20))
    w1 = wasserstein_distance(s[g == "a"], s[g == "b"])
    (section,) = report.attributes
    assert section.result.audit.spdd.value == pytest.approx(w1, abs=1e-12)
    assert section.result.max_pairwise_w1 == pytest.approx(w1, abs=1e-12)
    (row,) = report.repair.rows
    assert row.original == pytest.approx(w1, abs=1e-12)
    assert row.half == pytest.approx(w1 / 2, abs=0.02 * w1) and row.full < 0.02 * w1  # linear in θ for 2 groups
    rates = {r.group: r for r in section.scoring_rates}
    median = np.median(s)
    for grp in ("a", "b"):
        assert rates[grp].n == int(np.sum(g == grp))
        assert rates[grp].rate == pytest.approx(np.mean(s[g == grp] > median), abs=1e-12)
    assert section.lowest_ratio == pytest.approx(min(r.rate for r in rates.values()) / max(r.rate for r in rates.values()))
    assert report.data.n == n and not report.has_labels and report.n_perms == (20,)
    html = render(report)
    assert f"<td>{w1:.4f}" in html  # the largest pairwise W1 cell of the summary


def test_report_runs_each_permutation_test_once_and_matches_a_fresh_audit(rng, monkeypatch):
    """Each grouping's SPDD and SPEO tests are drawn once: the intervals' uncertainty reads the
    report's draws, and the numbers equal `metrics.audit` of the grouping's rows, run on its own."""
    from fairviz.significance import _permutation  # noqa: PLC0415 - counts the draws

    n = 500
    g = rng.choice(["a", "b"], n)
    s = np.clip(rng.beta(2, 3, n) + 0.1 * (g == "b"), 0, 1)
    y = np.clip(s + rng.normal(0, 0.2, n), 0, 1)
    draws = []
    real = _permutation._draw_null
    monkeypatch.setattr(_permutation, "_draw_null", lambda metric, *a: draws.append(metric) or real(metric, *a))
    report = compute_report(resolve_inputs(s, {"grp": g}, y, None, None, None),
                            ReportSettings(n_boot=40, n_perm=None))
    assert sorted(draws) == ["spdd", "speo"]
    monkeypatch.setattr(_permutation, "_draw_null", real)
    (section,) = report.attributes
    fresh = metrics.audit(s, g, y, n_boot=40, random_state=0)
    got = section.result.audit
    for name in ("spdd", "speo", "pcc", "srcc"):
        a, b = getattr(got, name), getattr(fresh, name)
        assert (a.value, a.ci_low, a.ci_high) == pytest.approx((b.value, b.ci_low, b.ci_high), abs=1e-12)
    assert got.spdd.detail.p_value == pytest.approx(fresh.spdd.detail.p_value)
    assert section.perm.n_perm == auto_n_perm(n, 2) and report.n_boot == 40


def test_a_second_report_at_another_tau_reuses_the_first(rng, monkeypatch):
    """With one `reuse` dict, a report at another τ draws no permutation and no bootstrap again,
    and its numbers are those of a fresh report at that τ."""
    from fairviz.report import _compute  # noqa: PLC0415 - counts the intervals
    from fairviz.significance import _permutation  # noqa: PLC0415 - counts the draws

    df = audit_frame(rng, 600)
    kw = dict(score="score", groups=["sex"], label="label", n_boot=20, n_perm=20)
    reuse: dict = {}
    build_report(df, tau=0.5, reuse=reuse, **kw)
    calls = []
    real_draw, real_intervals = _permutation._draw_null, _compute.audit_intervals
    monkeypatch.setattr(_permutation, "_draw_null", lambda *a: calls.append("perm") or real_draw(*a))
    monkeypatch.setattr(_compute, "audit_intervals", lambda *a, **k: calls.append("boot") or real_intervals(*a, **k))
    inputs = resolve_inputs(df, None, None, "score", ["sex"], "label")
    again = compute_report(inputs, ReportSettings(tau=0.3, n_boot=20, n_perm=20), reuse=reuse)
    assert calls == []
    fresh = compute_report(inputs, ReportSettings(tau=0.3, n_boot=20, n_perm=20))
    for a, b in zip(again.attributes, fresh.attributes):
        assert a.result.audit.to_dict() == b.result.audit.to_dict()
        assert a.perm.p_value == b.perm.p_value and repr(a.impact_rates) == repr(b.impact_rates)  # NaN-safe
    assert again.repair.rows == fresh.repair.rows
    assert "at τ = 0.30" in render(again)


def test_templates_are_package_data():
    """Every file the renderer reads is covered by pyproject's package-data (a plain install ships it)."""
    root = Path(report_package.__file__).parent
    patterns = tomllib.loads((root.parents[1] / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]["fairviz.report"]
    files = [p.relative_to(root).as_posix() for p in (root / "templates").iterdir() if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), files


_REPORT_SIDE_BY_SIDE = """
import re, sys
import numpy as np, pandas as pd
import fairviz.report._compute as compute
from fairviz.report import build_report
compute.PROCESS_MIN_ROWS = 0
rng = np.random.default_rng(5)
n = 1500
df = pd.DataFrame({"score": rng.random(n), "sex": rng.choice(["f", "m"], n), "band": rng.choice(["<40", ">55"], n),
                   "y": rng.random(n)})
html = build_report(df, score="score", groups=["sex", "band"], label="y", n_boot=40, n_perm=30,
                    generated_at=None, processes=sys.argv[1] == "1")
print("\\n".join(re.findall(r"<td[^>]*>(.*?)</td>", html)))
"""


def test_report_groupings_in_worker_processes_give_the_same_tables():
    """The CLI's report tests groupings (and the repair) in forked workers: every table cell is
    the same as on threads (subprocesses: a fork of this test process would copy its threads)."""
    import subprocess
    import sys

    def cells(processes: str) -> str:
        return subprocess.run([sys.executable, "-c", _REPORT_SIDE_BY_SIDE, processes], capture_output=True,
                              text=True, check=True).stdout

    forked, threaded = cells("1"), cells("0")
    assert forked.count("\n") > 50 and forked == threaded
