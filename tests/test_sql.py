"""fairviz.sql and `python -m fairviz audit --engine duckdb / --print-sql`: the SQL audit is exact
against the numpy path (fairviz.metrics) on random and tie-heavy data, 2 and k groups."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

duckdb = pytest.importorskip("duckdb")

from fairviz import metrics, sql  # noqa: E402
from fairviz.cli import main  # noqa: E402

TOL = 1e-12


def _data(rng, n, k, ties, int_groups=False):
    x = rng.random(n)
    if ties:  # few distinct scores, incl. exactly 0 and 1
        x = np.round(x * 10) / 10
    labels = list(range(k)) if int_groups else [f"g'{i}\"<" for i in range(k)]
    p = rng.dirichlet(np.ones(k) * 2)
    g = np.asarray(labels, dtype=object)[rng.choice(k, n, p=p)]
    x = np.clip(x + 0.05 * (g == labels[0]), 0, 1)
    return x, g


def _check(res: sql.SqlAudit, x, g, taus):
    assert res.n == len(x)
    assert res.spdd == pytest.approx(metrics.spdd(x, g), abs=TOL)
    assert res.median == np.median(x)
    for t in taus:
        at = res.at(t)
        rates = metrics.selection_rates(x, g, t)
        ratios = metrics.impact_ratio(x, g, t)
        assert set(at["grp"]) == set(rates)
        for r in at.itertuples():
            assert abs(r.rate - rates[r.grp]) <= TOL
            assert (np.isnan(ratios[r.grp]) and pd.isna(r.impact_ratio)) or abs(r.impact_ratio - ratios[r.grp]) <= TOL
            assert bool(r.four_fifths_fail) == bool(ratios[r.grp] < 0.8)
        dp = max(rates.values()) - min(rates.values())
        assert abs(at["dp"].iloc[0] - dp) <= TOL
        assert abs(at["dp"].iloc[0] - metrics.dp_curve(x, g).at(t)[0]) <= TOL
    table = metrics.scoring_rate_table(x, g).set_index("group")
    ll = res.scoring_rates().set_index("grp")
    for grp, row in table.iterrows():
        assert abs(ll.loc[grp, "rate"] - row.scoring_rate) <= TOL
        assert abs(ll.loc[grp, "impact_ratio"] - row.impact_ratio) <= TOL
        assert abs(ll.loc[grp, "share"] - row.share) <= TOL
        assert ll.loc[grp, "n"] == row.n and bool(ll.loc[grp, "small_group"]) == bool(row.small_group)


@pytest.mark.parametrize("n, k, ties, int_groups", [
    (10, 2, False, False), (2000, 2, False, False), (2001, 2, True, False), (3000, 3, False, True),
    (5000, 7, True, False), (4000, 2, True, True),
])
def test_exact_against_numpy(tmp_path, rng, n, k, ties, int_groups):
    x, g = _data(rng, n, k, ties, int_groups)
    path = tmp_path / "s.parquet"
    pd.DataFrame({"score": x, "grp": g}).to_parquet(path)
    taus = (0.0, 0.3, 0.5, float(x[3]), 1.0)
    _check(sql.run_duckdb(str(path), "score", "grp", taus), x, g, taus)


def test_globs_of_parquet_and_csv_files(tmp_path, rng):
    x, g = _data(rng, 6000, 3, False)
    df = pd.DataFrame({"score": x, "sex": g})
    for i, part in enumerate(np.array_split(np.arange(len(df)), 4)):
        df.iloc[part].to_parquet(tmp_path / f"part-{i}.parquet")
        df.iloc[part].to_csv(tmp_path / f"part-{i}.csv", index=False)
    for pattern in ("part-*.parquet", "part-*.csv"):
        _check(sql.run_duckdb(str(tmp_path / pattern), "score", "sex", (0.5,)), x, g, (0.5,))


def test_printed_sql_runs_unchanged_in_duckdb(tmp_path, rng, capsys):
    x, g = _data(rng, 3000, 4, True)
    df = pd.DataFrame({"the score": x * 100, "grp": g})
    path = tmp_path / "s.parquet"
    df.to_parquet(path)
    assert main(["audit", str(path), "--print-sql", "--score", "the score", "--group", "grp",
                 "--score-range", "0", "100", "--tau", "0.25", "--tau", "0.25", "--table", "lake.audit_scores"]) == 0
    printed = capsys.readouterr().out
    assert "read_parquet" not in printed and "FROM lake.audit_scores" in printed
    con = duckdb.connect()
    con.register("frame", df)
    con.execute("CREATE SCHEMA lake")
    con.execute("CREATE TABLE lake.audit_scores AS SELECT * FROM frame")
    out = con.execute(printed).df()  # unchanged
    xs = (df["the score"].to_numpy() - 0.0) / 100.0
    assert out["spdd"].iloc[0] == pytest.approx(metrics.spdd(xs, g), abs=TOL)
    at = out[(out["kind"] == "tau") & (out["threshold"] == 0.25)]
    assert len(at) == 4  # one row per group, the repeated τ once
    rates = metrics.selection_rates(xs, g, 0.25)
    assert all(abs(r.rate - rates[r.grp]) <= TOL for r in at.itertuples())


def test_cli_engine_duckdb_matches_numpy_engine(tmp_path, rng, capsys):
    x, g = _data(rng, 3000, 2, False)
    path = tmp_path / "s.parquet"
    pd.DataFrame({"score": x * 10, "grp": g}).to_parquet(path)
    base = ["audit", str(path), "--score", "score", "--group", "grp", "--score-range", "0", "10", "--json"]
    assert main(base + ["--n-boot", "0"]) == 0
    numpy_out = json.loads(capsys.readouterr().out)
    assert main(base + ["--engine", "duckdb", "--tau", "0.4"]) == 0
    duck = json.loads(capsys.readouterr().out)
    assert duck["spdd"]["value"] == pytest.approx(numpy_out["spdd"]["value"], abs=TOL)
    assert duck["groups"] == numpy_out["groups"]
    assert [r["scoring_rate"] for r in numpy_out["scoring_rates"]] == pytest.approx(
        [r["rate"] for r in duck["scoring_rates"]], abs=TOL)
    assert duck["score_range"]["note"].startswith("Scores rescaled from [0, 10]")
    assert duck["dp_at"][0]["tau"] == 0.4
    assert main(base[:-1] + ["--engine", "duckdb"]) == 0
    text = capsys.readouterr().out
    assert "Scores rescaled from [0, 10]" in text and "At τ = 0.5" in text and "spdd" in text


@pytest.mark.parametrize("frame, argv, fragment", [
    ({"score": [0.1, 0.5, 0.9], "grp": ["a", "b", "a"]}, ["--score", "nope", "--group", "grp"],
     "score column 'nope' not found; available columns: score, grp"),
    ({"score": [0.1, 0.5, 1.9], "grp": ["a", "b", "a"]}, ["--score", "score", "--group", "grp"], "outside [0, 1]"),
    ({"score": [0.1, None, 0.9], "grp": ["a", "b", "a"]}, ["--score", "score", "--group", "grp"], "1 missing value(s)"),
    ({"score": [0.1, 0.5, 0.9], "grp": ["a", None, "a"]}, ["--score", "score", "--group", "grp"],
     "group column 'grp' has 1 missing value(s)"),
    ({"score": [0.1, 0.5, 0.9], "grp": ["a", "a", "a"]}, ["--score", "score", "--group", "grp"], "only one group"),
    ({"score": ["x", "y", "z"], "grp": ["a", "b", "a"]}, ["--score", "score", "--group", "grp"],
     "score column 'score' does not hold numbers (e.g. 'x')"),
    ({"score": [0.1, 0.5, 0.9], "grp": ["a", "b", "a"]}, ["--score", "score", "--group", "grp", "--label", "score"],
     "do not take --label"),
    ({"score": [0.1, 0.5, 0.9], "grp": ["a", "b", "a"]}, ["--score", "score", "--group", "grp", "--group", "score"],
     "take one --group"),
    ({"score": [0.1, 0.5, 0.9], "grp": ["a", "b", "a"]}, ["--score", "score", "--group", "grp", "--tau", "2"],
     "--tau must be in [0, 1]"),
    ({"score": [0.1, 0.5, 0.9], "grp": ["a", "b", "a"]}, ["--score", "score", "--group", "grp", "--memory-limit",
                                                          "lots'; SELECT 1 --"], "memory limit must look like 2GB"),
])
def test_cli_bad_input_one_line(tmp_path, capsys, frame, argv, fragment):
    path = tmp_path / "bad.parquet"
    pd.DataFrame(frame).to_parquet(path)
    code = main(["audit", str(path), "--engine", "duckdb", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1, err  # no progress line
    assert fragment in err, err


def test_no_files_and_wrong_kind(tmp_path, capsys):
    for path, fragment in ((tmp_path / "*.parquet", "no file matches"), (tmp_path / "x.parquet", "no such file")):
        assert main(["audit", str(path), "--engine", "duckdb", "--score", "s", "--group", "g"]) == 2
        assert fragment in capsys.readouterr().err
    (tmp_path / "t.xlsx").write_text("x")
    assert main(["audit", str(tmp_path / "t.xlsx"), "--engine", "duckdb", "--score", "s", "--group", "g"]) == 2
    assert "give Parquet or CSV files" in capsys.readouterr().err


def test_engine_runs_what_print_sql_prints(tmp_path, rng, capsys):
    x, g = _data(rng, 500, 3, True)
    path = tmp_path / "s.parquet"
    pd.DataFrame({"score": x, "grp": g}).to_parquet(path)
    assert main(["audit", str(path), "--print-sql", "--score", "score", "--group", "grp", "--tau", "0.3"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == sql.run_duckdb(str(path), "score", "grp", (0.3,)).sql + ";"
    assert main(["audit", str(path), "--print-sql", "--score", "score", "--group", "grp", "--table", "a; DROP"]) == 2
    assert "--table must be a table name" in capsys.readouterr().err
    assert main(["audit", str(path), "--print-sql", "--score", "score", "--group", "grp", "--backticks"]) == 0
    printed = capsys.readouterr().out
    assert "`score` AS s, `grp` AS g FROM scores" in printed and '"score"' not in printed


def test_sql_literals_round_trip():
    con = duckdb.connect()
    for v in (0.1, 1 / 3, 5e-324, 0.30000000000000004, 1.0, 0.0):
        assert con.execute(f"SELECT {sql.number(v)}").fetchone()[0] == v
    assert con.execute(f"SELECT {sql.literal(chr(39) + 'x' + chr(34))}").fetchone()[0] == "'x\""
    assert sql.ident('a"b') == '"a""b"'
