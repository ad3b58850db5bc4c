"""`python -m fairviz audit` and fairviz.tabular: output, JSON keys, one-line errors, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fairviz import metrics
from fairviz.cli import main
from fairviz.tabular import read_table, select_columns


@pytest.fixture
def table(tmp_path, rng):
    n = 300
    df = pd.DataFrame({
        "score": rng.random(n),
        "gender": np.where(rng.random(n) < 0.4, "f", "m"),
        "y": rng.random(n),
        "note": ["x"] * n,
    })
    path = tmp_path / "scores.csv"
    df.to_csv(path, index=False)
    return df, path


def run_cli(capsys, *argv):
    code = main(["audit", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_keys_and_values_match_audit(table, capsys, tmp_path):
    df, path = table
    pq = tmp_path / "scores.parquet"
    df.to_parquet(pq)
    for f in (path, pq):
        code, out, err = run_cli(capsys, f, "--score", "score", "--group", "gender", "--label", "y",
                                 "--json", "--n-boot", "50", "--seed", "3")
        assert code == 0, err
        d = json.loads(out)
        for k in ("spdd", "speo", "pcc", "srcc"):
            assert {"value", "ci_low", "ci_high"} <= set(d[k])
        ref = metrics.audit(df.score, df.gender, df.y, n_boot=50, random_state=3)
        for k in ("spdd", "speo"):
            assert d[k]["ci_method"] == "test-inversion" and d[k]["summary"].startswith(k.upper())
            assert d[k]["upper"] == pytest.approx(getattr(ref, k).detail.upper, abs=1e-15)
        assert d["groups"] == {"f": int((df.gender == "f").sum()), "m": int((df.gender == "m").sum())}
        assert d["spdd"]["value"] == pytest.approx(ref.spdd.value, abs=1e-15)
        assert d["spdd"]["ci_low"] == pytest.approx(ref.spdd.ci_low, abs=1e-15)
        assert d["srcc"]["value"] == pytest.approx(ref.srcc.value, abs=1e-15)
        assert len(d["scoring_rates"]) == 2


def test_json_without_label_has_spdd_only(table, capsys):
    _, path = table
    code, out, _ = run_cli(capsys, path, "--score", "score", "--group", "gender", "--json", "--n-boot", "0")
    d = json.loads(out)
    assert code == 0 and "spdd" in d and "groups" in d
    assert not {"speo", "pcc", "srcc"} & set(d)
    assert d["spdd"]["ci_low"] is None  # no bootstrap


def test_human_table(table, capsys):
    _, path = table
    code, out, _ = run_cli(capsys, path, "--score", "score", "--group", "gender", "--label", "y", "--n-boot", "30")
    assert code == 0
    for word in ("spdd", "speo", "pcc", "srcc", "95% CI", "Scoring rates", "f (", "m ("):
        assert word in out


@pytest.mark.parametrize(
    "mutate, argv, fragment",
    [
        (None, ["--score", "nope", "--group", "gender"], "score column 'nope' not found; available columns: score, gender, y, note"),
        (None, ["--score", "score", "--group", "sex"], "group column 'sex' not found"),
        (None, ["--score", "score", "--group", "gender", "--label", "yy"], "label column 'yy' not found"),
        (None, ["--score", "note", "--group", "gender"], "300 non-numeric value(s) (first at row 0: 'x')"),
        (lambda df: df.assign(score=df.score.where(df.index != 7)), ["--score", "score", "--group", "gender"],
         "1 missing value(s) (first at row 7)"),
        (lambda df: df.assign(score=df.score * 3), ["--score", "score", "--group", "gender"], "outside [0, 1]"),
        (lambda df: df.assign(gender="f"), ["--score", "score", "--group", "gender"], "only one group"),
        (lambda df: df.assign(gender=df.gender.where(df.index != 4)), ["--score", "score", "--group", "gender"],
         "group column 'gender' has 1 missing value(s) (first at row 4)"),
        (None, ["--score", "score", "--group", "gender", "--n-boot", "-1"], "--n-boot"),
        # column names with a line break, a comma or edge spaces are quoted: the error stays one line
        (lambda df: df.rename(columns={"note": "a\nb", "y": "c,d", "score": " s "}), ["--score", "s", "--group", "gender"],
         "available columns: ' s ', gender, 'c,d', 'a\\nb'"),
    ],
)
def test_bad_input_exit_2_one_line(table, capsys, tmp_path, mutate, argv, fragment):
    df, path = table
    if mutate is not None:
        path = tmp_path / "bad.csv"
        mutate(df).to_csv(path, index=False)
    code, out, err = run_cli(capsys, path, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert fragment in err


def test_bad_files(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("score,group\n")
    (tmp_path / "scores.xlsx").write_text("not a table")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    cases = {
        tmp_path / "missing.csv": "no such file",
        tmp_path / "empty.csv": "is empty",
        tmp_path / "header.csv": "no rows",
        tmp_path / "scores.xlsx": "unknown file type '.xlsx'",
        tmp_path / "broken.parquet": "cannot read broken.parquet as Parquet",
        tmp_path: "is a folder",
    }
    for path, fragment in cases.items():
        code, out, err = run_cli(capsys, path, "--score", "score", "--group", "group")
        assert code == 2 and err.count("\n") == 1 and fragment in err, (path, err)


def test_subprocess_entry_point(table):
    _, path = table
    ok = subprocess.run([sys.executable, "-m", "fairviz", "audit", str(path), "--score", "score", "--group",
                         "gender", "--json", "--n-boot", "20"], capture_output=True, text=True)
    assert ok.returncode == 0 and "spdd" in json.loads(ok.stdout)
    bad = subprocess.run([sys.executable, "-m", "fairviz", "audit", str(path) + ".nope", "--score", "score",
                          "--group", "gender"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: no such file") and bad.stdout == ""


def test_tabular_helpers(tmp_path, rng):
    df = pd.DataFrame({"s": [0.1, 0.5, 1.0], "g": [1, 2, 1], "y": [True, False, True]})
    df.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    back = read_table(tmp_path / "t.tsv")
    assert back.equals(df)
    s, g, y = select_columns(back, "s", "g", "y")
    assert s.dtype == np.float64 and y.tolist() == [1.0, 0.0, 1.0] and g.tolist() == [1, 2, 1]
    s, g, y = select_columns(df, "s", "g")
    assert y is None
    with pytest.raises(ValueError, match="expected a pandas DataFrame"):
        select_columns({"s": [0.1]}, "s", "g")


@pytest.fixture
def two_attributes(tmp_path, rng):
    n = 600
    df = pd.DataFrame({
        "score": rng.random(n),
        "sex": rng.choice(["f", "m"], n),
        "age_band": rng.choice(["<40", "40-55", ">55"], n),
        "y": rng.random(n),
    })
    df["score"] = np.clip(df.score + 0.1 * (df.sex == "m"), 0, 1)
    path = tmp_path / "two.csv"
    df.to_csv(path, index=False)
    return df, path


def test_repeated_group_audits_each_attribute_and_the_intersection(two_attributes, capsys):
    df, path = two_attributes
    code, out, err = run_cli(capsys, path, "--score", "score", "--group", "sex", "--group", "age_band",
                             "--label", "y", "--json", "--n-boot", "0")
    assert code == 0, err
    d = json.loads(out)
    inter = df.sex + " × " + df.age_band
    assert list(d["attributes"]) == ["sex", "age_band", "sex × age_band"]
    for name, groups in (("sex", df.sex), ("age_band", df.age_band), ("sex × age_band", inter)):
        a = d["attributes"][name]
        assert a["spdd"]["value"] == pytest.approx(metrics.spdd(df.score, groups), abs=1e-15)
        assert a["speo"]["value"] == pytest.approx(metrics.speo(df.score, df.y, groups), abs=1e-15)
        assert a["groups"] == groups.value_counts().to_dict()
        assert len(a["scoring_rates"]) == groups.nunique()
    assert d["spdd"] == d["attributes"]["sex"]["spdd"]  # top level: the first attribute, as before
    assert d["source"]["groups"] == ["sex", "age_band"] and d["score_range"] is None
    code, out, _ = run_cli(capsys, path, "--score", "score", "--group", "sex", "--group", "age_band", "--n-boot", "0")
    assert code == 0
    for header in ("by 'sex':", "by 'age_band':", "by 'sex × age_band':", "m × <40 ("):
        assert header in out


def test_score_range_rescales_and_says_so(two_attributes, capsys, tmp_path):
    df, _ = two_attributes
    path = tmp_path / "pct.csv"
    df.assign(score=df.score * 80 + 10).to_csv(path, index=False)  # on [10, 90]
    code, _, err = run_cli(capsys, path, "--score", "score", "--group", "sex")
    assert code == 2 and "outside [0, 1]" in err
    code, out, err = run_cli(capsys, path, "--score", "score", "--group", "sex", "--score-range", "10", "90",
                             "--json", "--n-boot", "0")
    assert code == 0, err
    d = json.loads(out)
    rescaled = (df.score * 80 + 10 - 10) / 80
    assert d["spdd"]["value"] == pytest.approx(metrics.spdd(rescaled, df.sex), abs=1e-12)
    assert d["score_range"]["low"] == 10 and d["score_range"]["high"] == 90
    assert "rescaled from [10, 90]" in d["score_range"]["note"]
    code, out, _ = run_cli(capsys, path, "--score", "score", "--group", "sex", "--score-range", "10", "90", "--n-boot", "0")
    assert code == 0 and "Scores rescaled from [10, 90] to [0, 1]" in out


@pytest.mark.parametrize("low, high, fragment", [
    ("5", "5", "needs LOW < HIGH; got LOW = 5, HIGH = 5"),
    ("90", "10", "needs LOW < HIGH"),
    ("0", "50", "value(s) outside the given score range [0, 50]"),
    ("0", "inf", "must be finite"),
])
def test_bad_score_range_is_one_line(two_attributes, capsys, tmp_path, low, high, fragment):
    df, _ = two_attributes
    path = tmp_path / "pct.csv"
    df.assign(score=df.score * 100).to_csv(path, index=False)
    code, out, err = run_cli(capsys, path, "--score", "score", "--group", "sex", "--score-range", low, high)
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert fragment in err, err


_SIDE_BY_SIDE = """
import json, sys
import fairviz.cli.audit as audit
from fairviz.cli import main
audit.PROCESS_MIN_ROWS = int(sys.argv[2])
main(["audit", sys.argv[1], "--score", "score", "--group", "gender", "--group", "band", "--label", "y",
      "--n-boot", "60", "--json"])
"""


def test_views_in_worker_processes_give_the_numbers_of_threads(tmp_path, rng):
    """A large audit runs its views in forked worker processes: the same JSON as on threads
    (run in subprocesses, as the CLI runs: a fork of this test process would copy its threads)."""
    n = 2000
    path = tmp_path / "s.csv"
    pd.DataFrame({"score": rng.random(n), "gender": rng.choice(["f", "m"], n), "band": rng.choice(["<40", ">55"], n),
                  "y": rng.random(n)}).to_csv(path, index=False)

    def run(threshold: int) -> dict:
        proc = subprocess.run([sys.executable, "-c", _SIDE_BY_SIDE, str(path), str(threshold)],
                              capture_output=True, text=True, check=True)
        return json.loads(proc.stdout)

    forked, threaded = run(0), run(10**9)
    assert set(forked["attributes"]) == {"gender", "band", "gender × band"}
    assert forked == threaded
