"""`python -m fairviz monitor STATE --add FILE` on random and hostile tables: exit code 0 or 1
with a JSON answer whose SPDD matches a direct computation (within the grid error), or exit code 2
with one ``error: ...`` line and the state file exactly as it was (or not created)."""

from __future__ import annotations

import json
import tempfile
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tests.reliability._tables import brute_spdd, cases, cli_path, encode
from tests.reliability.test_cli_fuzz import run_cli

_DIR = Path(tempfile.mkdtemp(prefix="fairviz-monitor-fuzz-"))


def _check(rc: int, out: str, err: str) -> dict | None:
    assert rc in (0, 1, 2), (rc, out, err)
    if rc == 2:
        lines = err.splitlines()
        assert out == "" and len(lines) == 1 and lines[0].startswith("error: "), err
        return None
    assert err == ""
    res = json.loads(out)
    assert res["rejected"] == (rc == 1)
    return res


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_monitor_add_fuzz(case):
    d = _DIR / uuid.uuid4().hex[:10]
    d.mkdir()
    path = d / case.filename
    path.write_bytes(encode(case))
    state = d / "state.json"
    argv = ["monitor", str(state), "--add", str(path), f"--score={case.score}", f"--group={case.group}", "--json"]
    res = _check(*run_cli(argv))
    if res is None:
        assert not state.exists()
        return
    kind, lib = cli_path(path, case.score, case.group, None, n_boot=0)
    if kind == "ok":  # two or more groups: the audit's SPDD, within the monitor's grid error
        assert res["n"] == len(lib["x"])
        assert abs(res["gaps"][0]["value"] - brute_spdd(lib["x"], lib["g"])) <= res["grid_error"] + 1e-9
    # the same file again into the existing state: adds the rows, or is refused and changes nothing
    before = state.read_bytes()
    again = _check(*run_cli(argv))
    if again is None:
        assert state.read_bytes() == before
    else:
        assert again["n"] == 2 * res["n"] and again["updates"] == 2
