"""`python -m fairviz audit` on random and hostile tables and options: exit code 0 with a JSON
audit equal to the library's (and to a direct SPDD computation), or exit code 2 with exactly one
line ``error: ...`` on stderr and nothing on stdout. In-process through `fairviz.cli.main`, and a
few cases as real subprocesses.
"""

from __future__ import annotations

import collections
import io
import json
import math
import subprocess
import sys
import tempfile
import uuid
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fairviz.cli import main
from tests.reliability._helpers import ENV_BASE, REPO
from tests.reliability._tables import brute_spdd, cases, cli_path, close, encode

OUTCOMES: collections.Counter = collections.Counter()
_DIR = Path(tempfile.mkdtemp(prefix="fairviz-cli-fuzz-"))


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse usage errors
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def check_outcome(rc: int, out: str, err: str) -> dict | None:
    assert rc in (0, 2), (rc, out, err)
    if rc == 2:
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > len("error: "), err
        return None
    assert err == ""
    return json.loads(out)



@pytest.fixture(scope="module", autouse=True)
def _report_outcomes():
    """Print how the fuzzed cases ended (run with -s to see it; docs/RELIABILITY.md quotes it)."""
    yield
    print(f"\n{__name__}: " + ", ".join(f"{k}: {v}" for k, v in sorted(OUTCOMES.items(), key=str)))


def _write(data: bytes, filename: str) -> Path:
    d = _DIR / uuid.uuid4().hex[:10]
    d.mkdir()
    p = d / filename
    p.write_bytes(data)
    return p


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases(), n_boot=st.sampled_from([0, 10, 10, 10, 10, 10, -1]),
       level=st.sampled_from([0.95] * 7 + [0.5, 0.0, 1.0, float("nan")]),
       as_json=st.booleans())
def test_cli_audit_fuzz(case, n_boot, level, as_json):
    path = _write(encode(case), case.filename)
    argv = ["audit", str(path), f"--score={case.score}", f"--group={case.group}", f"--n-boot={n_boot}",
            f"--level={level}", "--seed=3"]
    if case.label is not None:
        argv.append(f"--label={case.label}")
    if as_json:
        argv.append("--json")
    rc, out, err = run_cli(argv)
    OUTCOMES[rc] += 1
    if not as_json:
        assert rc in (0, 2) and (rc == 0) == (err == "")
        if rc == 2:
            assert len(err.splitlines()) == 1 and err.startswith("error: ")
        return
    result = check_outcome(rc, out, err)
    options_ok = n_boot >= 0 and 0 < level < 1
    if case.clean and options_ok:
        assert result is not None, (err, case.meta)
    if result is None:
        return
    kind, lib = cli_path(path, case.score, case.group, case.label, n_boot=0)
    assert kind == "ok"
    assert result["n"] == lib["result"].n
    assert close(result["spdd"]["value"], brute_spdd(lib["x"], lib["g"]))
    assert result["n_boot"] == n_boot and math.isclose(result["level"], level)
    for key in ("pcc", "srcc", "speo"):
        assert (key in result) == (case.label is not None) or result.get(key) is None


@pytest.mark.parametrize("argv_tail", [
    ["--score", "score"],  # missing --group: argparse's own usage error, also exit 2
    ["--score", "score", "--group", "group", "--n-boot", "many"],
])
def test_cli_usage_errors_exit_2(argv_tail):
    path = _write(b"score,group\n0.1,a\n0.9,b\n", "ok.csv")
    rc, out, err = run_cli(["audit", str(path), *argv_tail])
    assert rc == 2 and out == "" and "error:" in err


# ---------------------------------------------------------------------------------------------
# real subprocesses

SUBPROCESS_CASES = {
    "good.csv": (b"score,group,label\n0.1,a,0.2\n0.9,b,0.8\n0.5,a,0.4\n0.7,b,0.9\n", 0),
    "latin-1.csv": ("score,group\n0.1,é\n0.9,ü\n".encode("latin-1"), 2),
    "garbage.parquet": (b"\x00" * 100 + b"PAR1", 2),
    "single-group.csv": (b"score,group\n0.1,a\n0.9,a\n", 2),
    "out-of-range.csv": (b"score,group\n0.1,a\n1.9,b\n", 2),
    "missing.csv": (None, 2),
}


@pytest.mark.parametrize("name", list(SUBPROCESS_CASES))
def test_cli_as_a_real_process(name):
    data, want = SUBPROCESS_CASES[name]
    path = _write(data, name) if data is not None else _DIR / "does-not-exist.csv"
    argv = [sys.executable, "-m", "fairviz", "audit", str(path), "--score", "score", "--group", "group", "--json",
            "--n-boot", "10"]
    if name == "good.csv":
        argv += ["--label", "label"]
    proc = subprocess.run(argv, cwd=REPO, env=ENV_BASE, capture_output=True, text=True, timeout=120)
    assert proc.returncode == want, proc.stderr
    result = check_outcome(proc.returncode, proc.stdout, proc.stderr)
    if want == 0:
        assert result["n"] == 4 and close(result["spdd"]["value"], 0.5) and "pcc" in result
    else:
        assert "Traceback" not in proc.stderr
