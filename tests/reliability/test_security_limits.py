"""Size limits and missing values: memory bombs, too many groups, out of memory, and group names
such as "NA" that pandas would have read as missing.

The bomb files are real (10⁸ rows in about 1 MB); the command line runs in a subprocess whose
peak memory is read back from the kernel. The same refusal by the running app server is
test_security_server.py; the timings are bench/bench_bombs.py (bench/RESULTS.md).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fairviz import app_support, metrics
from fairviz.cli import main
from fairviz.groups import audit_attributes
from fairviz.tabular import MAX_GROUPS, read_table
from tests.reliability._bombs import csv_gz_bomb, parquet_bomb
from tests.reliability._helpers import ENV_BASE, PY, REPO

MEMORY_BOUND_MB = 1536


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bombs")
    return {"parquet": parquet_bomb(d / "bomb.parquet"), "csv.gz": csv_gz_bomb(d / "bomb.csv.gz")}


def _cli_peak(argv: list[str]) -> tuple[int, str, float]:
    """(exit code, stderr, peak RSS in MB) of ``python -m fairviz ...`` in a fresh process."""
    code = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
            "sys.stdout.write(str(p.returncode) + '\\n' + str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) "
            "+ '\\n' + p.stderr)")
    out = subprocess.run([PY, "-c", code, PY, "-m", "fairviz", *argv], capture_output=True, text=True, cwd=REPO,
                         env=ENV_BASE, timeout=300).stdout
    rc, peak_kb, err = out.split("\n", 2)
    return int(rc), err, int(peak_kb) / 1024


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "csv.gz"])
def test_cli_refuses_a_memory_bomb_clearly_within_bounded_memory(bombs, kind):
    path = bombs[kind]
    assert path.stat().st_size < 1.5e6
    rc, err, peak_mb = _cli_peak(["audit", str(path), "--score", "score", "--group", "group"])
    assert rc == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert "more than 10,000,000 rows" in err and "--max-rows" in err and "Traceback" not in err
    assert peak_mb < MEMORY_BOUND_MB, peak_mb


@pytest.mark.slow
def test_app_reader_refuses_a_parquet_bomb_before_building_it(bombs):
    data = bombs["parquet"].read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ValueError, match=r"more than 2,000,000 rows \(100,000,000 by its footer\).*command line"):
        app_support.read_uploaded_table(data, "scores.parquet")
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 100


def test_row_cap_counts_csv_lines_exactly(tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"score": np.linspace(0, 1, 50), "group": ["a", "b"] * 25}).to_csv(path, index=False)
    assert len(read_table(path, max_rows=50)) == 50
    with pytest.raises(ValueError, match="more than 49 rows"):
        read_table(path, max_rows=49)
    assert main(["audit", str(path), "--score", "score", "--group", "group", "--n-boot", "0",
                 "--max-rows", "49"]) == 2


def test_out_of_memory_is_a_clear_cli_error(tmp_path, monkeypatch, capsys):
    path = tmp_path / "s.csv"
    pd.DataFrame({"score": [0.1, 0.9, 0.4, 0.6], "group": ["a", "b", "a", "b"]}).to_csv(path, index=False)

    def oom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(metrics, "audit_prepared", oom)  # the CLI's audit runs on prepared rows
    assert main(["audit", str(path), "--score", "score", "--group", "group"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory") and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------
# 3. too many groups


def test_cli_audit_refuses_too_many_groups(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "ids.csv"
    pd.DataFrame({"score": rng.random(4000), "group": [f"id{i}" for i in range(2000)] * 2}).to_csv(path, index=False)
    assert main(["audit", str(path), "--score", "score", "--group", "group", "--n-boot", "0"]) == 2
    assert "2,000 distinct groups (more than 200)" in capsys.readouterr().err
    # the cap can be raised for a run that means it
    assert main(["audit", str(path), "--score", "score", "--group", "group", "--n-boot", "0", "--json",
                 "--max-groups", "2000"]) == 0


def test_app_refuses_too_many_groups_and_skips_huge_intersections():
    rng = np.random.default_rng(1)
    n = 30_000
    df = pd.DataFrame({"score": rng.random(n), "id": np.arange(n) % 300,
                       "a": rng.integers(0, 150, n), "b": rng.integers(0, 150, n)})
    with pytest.raises(ValueError, match="300 distinct groups"):
        app_support.audit_columns(df, "score", ["id"])
    x, attrs, _ = app_support.audit_columns(df, "score", ["a", "b"])  # 150 each: allowed
    res = audit_attributes(x, attrs, n_boot=0, max_groups=MAX_GROUPS, max_cells=app_support.APP_MAX_CELLS)
    assert set(res.results) == {"a", "b"} and "more than 200" in res.skipped["a × b"]


# ---------------------------------------------------------------------------------------------
# 6. only an empty cell is missing


NA_TABLE = "score,group\n" + "".join(f"{s},{g}\n" for s, g in zip(
    [0.9, 0.8, 0.85, 0.2, 0.3, 0.1, 0.5, 0.55, 0.6, 0.4, 0.45],
    ["NA", "NA", "NA", "EU", "EU", "EU", "None", "null", "N/A", "", "EU"]))


def test_groups_named_na_or_none_are_groups_not_missing(tmp_path, capsys):
    path = tmp_path / "regions.csv"
    path.write_text(NA_TABLE)
    # app path: NA is a group; only the empty cell is left out, and counted
    df = app_support.read_uploaded_table(NA_TABLE.encode(), "regions.csv")
    x, attrs, _ = app_support.audit_columns(df, "score", ["group"])
    view = audit_attributes(x, attrs, n_boot=0)["group"]
    assert view.group_counts == {"EU": 4, "N/A": 1, "NA": 3, "None": 1, "null": 1} and view.n_missing == 1
    # the CLI refuses the empty cell unless told what is missing; then it says how many rows it left out
    assert main(["audit", str(path), "--score", "score", "--group", "group", "--n-boot", "0"]) == 2
    assert "1 missing value(s)" in capsys.readouterr().err
    assert main(["audit", str(path), "--score", "score", "--group", "group", "--n-boot", "0", "--json",
                 "--missing-values", "null, n/a"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_left_out"] == 3 and out["groups"] == {"EU": 4, "NA": 3, "None": 1}
    assert main(["audit", str(path), "--score", "score", "--group", "group", "--n-boot", "0",
                 "--missing-values", "None,null,N/A"]) == 0
    assert "rows left out (missing group): 4" in capsys.readouterr().out
    # the user's list on the app path too
    x, attrs, _ = app_support.audit_columns(df, "score", ["group"], missing_values=("NA",))
    view = audit_attributes(x, attrs, n_boot=0)["group"]
    assert "NA" not in view.group_counts and view.n_missing == 4


def test_cli_table_always_shows_rows_left_out(tmp_path, capsys):
    path = tmp_path / "s.csv"
    pd.DataFrame({"score": [0.1, 0.9, 0.4, 0.6], "group": ["a", "b", "a", "b"]}).to_csv(path, index=False)
    assert main(["audit", str(path), "--score", "score", "--group", "group", "--n-boot", "0"]) == 0
    assert "rows left out (missing group): 0" in capsys.readouterr().out


def test_subprocess_helper_reports_child_memory():
    """The peak-memory probe used above measures the child, not this process."""
    rc, err, peak = _cli_peak(["audit", "--help"])
    assert rc == 0 and 10 < peak < MEMORY_BOUND_MB
    assert sys.executable
