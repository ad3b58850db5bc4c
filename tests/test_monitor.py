"""fairviz.monitor: the running gaps against fairviz.metrics, the confidence sequences by
simulation, the state file, replays, the CLI's exit codes and the figure."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from fairviz import metrics, monitor, monitor_figures
from fairviz.cli import main as cli_main
from fairviz.monitor import _bounds


def _state(groups=("A", "B"), **kw) -> monitor.MonitorState:
    return monitor.MonitorState(monitor.MonitorConfig(tuple(groups), **kw))


def _midpoints(x: np.ndarray, bits: int) -> np.ndarray:
    b = np.ceil(x * (1 << bits))
    return np.where(b == 0, 0.0, (b - 0.5) / (1 << bits))


def _edgy_scores(rng, n: int, bits: int) -> np.ndarray:
    """Random scores with exact 0s, 1s and grid points mixed in."""
    x = rng.beta(rng.uniform(0.5, 3), rng.uniform(0.5, 3), n)
    x[rng.random(n) < 0.05] = 0.0
    x[rng.random(n) < 0.05] = 1.0
    on_grid = rng.random(n) < 0.1
    x[on_grid] = rng.integers(0, (1 << bits) + 1, on_grid.sum()) / (1 << bits)
    return x


# ------------------------------------------------------------------------- running gaps


@pytest.mark.parametrize("k,bits", [(2, 16), (2, 6), (3, 10), (5, 8)])
def test_running_spdd_equals_metrics_spdd_of_all_rows_so_far(k, bits):
    rng = np.random.default_rng(k * 100 + bits)
    groups = [f"g{i}" for i in range(k)]
    state = _state(groups, bits=bits)
    xs, gs = [], []
    batches = [400, 1, 0, 250, 3000]
    for i, m in enumerate(batches):
        x = _edgy_scores(rng, m, bits)
        g = rng.choice(groups, m) if i != 3 else np.full(m, groups[-1])  # batch 3: one group only
        state.update(x, g)
        xs.append(x)
        gs.append(g)
        all_x, all_g = np.concatenate(xs), np.concatenate(gs)
        if len(set(all_g)) < 2:
            assert state.spdd() is None
            continue
        # exact on the cell midpoints: the integral code itself
        assert state.spdd() == pytest.approx(metrics.spdd(_midpoints(all_x, bits), all_g), rel=1e-12, abs=1e-15)
        # within the stated grid error of the exact SPDD of the raw scores
        assert abs(state.spdd() - metrics.spdd(all_x, all_g)) <= state.config.grid_error + 1e-12
    assert state.n == sum(batches)


def test_rate_gap_is_exact_at_any_tau():
    rng = np.random.default_rng(1)
    taus = (0.0, 0.3, 0.123456789, 0.5)
    state = _state(("A", "B", "C"), taus=taus, bits=4)  # coarse grid: DP(τ) must not depend on it
    x = _edgy_scores(rng, 5000, 4)
    x[:50] = 0.123456789
    g = rng.choice(["A", "B", "C"], 5000)
    gaps = {gp.name: gp for gp in state.update(x, g)}
    for tau in taus:
        rates = metrics.selection_rates(x, g, tau)
        assert gaps[f"DP({tau:g})"].value == pytest.approx(max(rates.values()) - min(rates.values()), abs=1e-15)


def test_dkw_radius_formula_and_shape():
    r = monitor.dkw_radius(np.array([0, 1, 10, 1000, 10**6]), 0.05)
    assert r[0] == 1.0 and r[1] == 1.0  # no data, and capped at 1
    want = 0.85 * math.sqrt((math.log(math.log(math.e * 1000)) + 0.8 * math.log(1612 / 0.05)) / 1000)
    assert r[3] == pytest.approx(want, rel=1e-12)
    assert np.all(np.diff(r[1:]) <= 0) and r[4] < 0.01


def test_late_group_cannot_raise_lower_bound_but_keeps_upper_wide():
    rng = np.random.default_rng(2)
    state = _state(("A", "B", "C"))
    m = 20000
    x = np.concatenate([rng.uniform(0, 0.5, m), rng.uniform(0.5, 1, m)])  # A vs B: SPDD 0.5
    (spdd,) = state.update(x, ["A"] * m + ["B"] * m)
    assert spdd.rejected and spdd.low > 0.3  # two groups suffice to alarm
    assert spdd.high > 0.9  # C could be anywhere
    (spdd,) = state.update(rng.uniform(0.25, 0.75, m), ["C"] * m)
    assert spdd.high < 0.6 and spdd.low > 0.3


def test_bounds_hold_on_grid_cells_for_a_tiny_grid():
    """With 16 cells the bounds must still cover the true SPDD (the cell argument, not rounding)."""
    rng = np.random.default_rng(3)
    lows, highs = [], []
    for _ in range(50):
        state = _state(bits=4)
        m = 3000
        x = np.concatenate([rng.uniform(0, 0.8, m), rng.uniform(0.05, 0.85, m)])  # SPDD = 0.05
        (g,) = state.update(x, ["A"] * m + ["B"] * m)
        lows.append(g.low)
        highs.append(g.high)
    assert max(lows) <= 0.05 <= min(highs)


# ------------------------------------------------------------------- validity by simulation


def _simulate(gap: float, streams: int = 200, looks: int = 100, step: int = 500, bits: int = 8, seed: int = 0):
    """Uniform streams with SPDD = `gap` (a shift); returns per stream whether the anytime test and
    the fixed-sample z-test repeated at every look ever reject H0: SPDD ≤ 0.05, and whether the
    confidence sequence ever misses the truth."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((streams, 2, (1 << bits) + 1), dtype=np.int64)
    anytime = np.zeros(streams, bool)
    naive = np.zeros(streams, bool)
    missed = np.zeros(streams, bool)
    zc = _bounds.z_critical(0.05)
    for _ in range(looks):
        g = rng.random((streams, step)) < 0.5
        x = rng.uniform(0, 0.8, (streams, step)) + gap * g
        cell = np.ceil(x * (1 << bits)).astype(np.int64)
        idx = (np.arange(streams)[:, None] * 2 + g) * ((1 << bits) + 1) + cell
        counts += np.bincount(idx.ravel(), minlength=counts.size).reshape(counts.shape)
        t, n = _bounds.survival(counts)
        lo, hi = _bounds.spdd_bounds(t, n, 0.05)
        anytime |= lo > 0.05
        missed |= (lo > gap) | (hi < gap)
        naive |= _bounds.fixed_spdd_z(counts, 0.05) > zc
    return anytime, naive, missed


def test_null_streams_rarely_alarm_while_repeated_fixed_tests_do():
    anytime, naive, missed = _simulate(gap=0.05)
    assert anytime.mean() <= 0.05 and missed.mean() <= 0.05
    assert naive.mean() >= 0.15  # peeking: the fixed-sample test re-run 100 times


def test_a_large_gap_is_found():
    anytime, _, missed = _simulate(gap=0.2, streams=50, looks=20, seed=1)
    assert anytime.all() and not missed.any()


# ------------------------------------------------------------------------- state and file


def test_state_round_trips_and_alarms_stay(tmp_path):
    rng = np.random.default_rng(4)
    state = _state(taus=(0.5,))
    for day in range(3):
        state.update(rng.random(500), rng.choice(["A", "B"], 500), time=f"day {day}")
    state.update(np.r_[np.zeros(4000), np.ones(4000)], ["A"] * 4000 + ["B"] * 4000, time="day 3")
    assert state.rejected and state.alarms["SPDD"]["update"] == 4
    path = monitor.save(state, tmp_path / "s.json")
    back = monitor.load(path)
    assert np.array_equal(back.counts, state.counts) and np.array_equal(back.above, state.above)
    assert back.config == state.config and back.alarms == state.alarms and back.history == state.history
    assert back.gaps() == state.gaps()
    back.update(rng.random(100), rng.choice(["A", "B"], 100))
    assert back.rejected and back.alarms["SPDD"]["update"] == 4  # sticky: the first alarm is kept
    assert list(back.history_frame()["alarm"][back.history_frame()["gap"] == "SPDD"]) == [False] * 3 + [True] * 2


def _doc(state) -> dict:
    return json.loads(monitor.dumps(state))


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["state"]["config"].update(epsilon=0.5), "modified or damaged"),
    (lambda d: d["state"].update(updates=99), "modified or damaged"),
    (lambda d: d.update(sha256="0" * 64), "modified or damaged"),
    (lambda d: d.update(version=2), "format version 2"),
    (lambda d: d.update(format="other"), "not a fairviz monitor state"),
    (lambda d: d.pop("state"), "modified or damaged"),
])
def test_tampered_state_is_refused(edit, message):
    state = _state()
    state.update([0.1, 0.9], ["A", "B"])
    doc = _doc(state)
    edit(doc)
    with pytest.raises(ValueError, match=message):
        monitor.loads(json.dumps(doc))


def test_damaged_counts_with_a_recomputed_hash_are_refused():
    import hashlib

    from fairviz.monitor import _store

    state = _state()
    doc = _doc(state)
    doc["state"]["counts"] = "AAAA"
    doc["sha256"] = hashlib.sha256(_store._canonical(doc["state"])).hexdigest()
    with pytest.raises(ValueError, match="damaged"):
        monitor.loads(json.dumps(doc))


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", "{\"format\": 3}"])
def test_non_state_text_is_refused(text):
    with pytest.raises(ValueError, match="not a fairviz monitor state"):
        monitor.loads(text)


def test_mismatched_settings_are_refused_and_equal_ones_accepted():
    state = _state(epsilon=0.05, taus=(0.5,))
    monitor.check_settings(state, epsilon=0.05, groups=["B", "A"], taus=(0.5,), alpha=None)
    with pytest.raises(ValueError, match="created with epsilon 0.05, not 0.1"):
        monitor.check_settings(state, "s.json", epsilon=0.1)
    with pytest.raises(ValueError, match="taus"):
        monitor.check_settings(state, taus=(0.4,))
    with pytest.raises(ValueError, match="groups"):
        monitor.check_settings(state, groups=["A", "B", "C"])


def test_bad_batches_leave_the_state_unchanged():
    state = _state(taus=(0.5,))
    state.update([0.2, 0.8], ["A", "B"])
    before = monitor.dumps(state)
    for scores, groups, message in [
        ([0.5, 1.5], ["A", "B"], r"\[0, 1\]"),
        ([0.5, np.nan], ["A", "B"], r"\[0, 1\]"),
        ([0.5, 0.6], ["A", "Z"], "'Z' not among this state's groups"),
        ([0.5, 0.6], ["A", None], "missing"),
        ([0.5], ["A", "B"], "differ in length"),
        ([0.5, 0.6], np.array([1, "1"], dtype=object), "written the same way"),
    ]:
        with pytest.raises(ValueError, match=message):
            state.update(scores, groups)
    assert monitor.dumps(state) == before


@pytest.mark.parametrize("kw,message", [
    ({"groups": ("A",)}, "two or more groups"), ({"groups": ("A", "A")}, "repeat"),
    ({"groups": tuple(map(str, range(65)))}, "at most 64 groups"),
    ({"groups": tuple(map(str, range(20))), "bits": 20}, "use fewer bits"),
    ({"epsilon": 1.5}, "epsilon"), ({"alpha": 0.0}, "alpha"), ({"taus": (1.0,)}, "tau"), ({"bits": 30}, "bits"),
])
def test_bad_settings(kw, message):
    with pytest.raises(ValueError, match=message):
        monitor.MonitorConfig(**{"groups": ("A", "B"), **kw})


def test_history_is_bounded(monkeypatch):
    from fairviz.monitor import _state as state_mod

    monkeypatch.setattr(state_mod, "HISTORY_MAX", 5)
    state = _state()
    state.update(np.r_[np.zeros(3000), np.ones(3000)], ["A"] * 3000 + ["B"] * 3000)
    for _ in range(7):
        state.update([0.5], ["A"])
    assert len(state.history) == 5 and state.history[0]["update"] == 4
    assert state.alarms["SPDD"]["update"] == 1


# ------------------------------------------------------------------------------- replay


def test_look_slices_keep_equal_times_together():
    times = np.sort(np.random.default_rng(5).integers(0, 1000, 20000))
    sl = monitor.look_slices(times, max_looks=50)
    assert 1 < len(sl) <= 50 and sl[0].start == 0 and sl[-1].stop == len(times)
    for a, b in zip(sl[:-1], sl[1:]):
        assert a.stop == b.start and times[a.stop - 1] != times[b.start]
    assert len(monitor.look_slices(np.array([1, 1, 2, 3, 3]))) == 3


def test_replay_equals_one_big_update_and_orders_by_time():
    df = monitor.example_stream(n_days=10, per_day=300).sample(frac=1.0, random_state=0)
    df["when"] = pd.to_datetime("2026-01-01") + pd.to_timedelta(df["day"], unit="D")
    df["when"] = df["when"].astype(str)  # dates as text, parsed by the replay
    state = monitor.replay(df, "score", "group", "when", taus=(0.5,))
    assert state.updates == 10 and state.history[0]["time"].startswith("2026-01-02")
    once = _state(state.config.groups, taus=(0.5,))
    once.update(df["score"], df["group"])
    assert np.array_equal(once.counts, state.counts) and once.gaps()[0].value == state.gaps()[0].value


def test_replay_bad_time_column():
    df = pd.DataFrame({"t": [1, None, 3], "score": [0.1, 0.2, 0.3], "group": ["A", "B", "A"]})
    with pytest.raises(ValueError, match="missing"):
        monitor.replay(df, "score", "group", "t")
    df["t"] = ["2026-01-01", "soon", "2026-01-03"]
    with pytest.raises(ValueError, match="neither numbers nor dates.*'soon'"):
        monitor.replay(df, "score", "group", "t")
    with pytest.raises(ValueError, match="time column 'x' not found"):
        monitor.replay(df, "score", "group", "x")


# ---------------------------------------------------------------------------------- CLI


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = cli_main(["monitor", *map(str, argv)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _csv(path, scores, groups, **extra):
    pd.DataFrame({"score": scores, "group": groups, **extra}).to_csv(path, index=False)
    return path


def test_cli_exit_codes(tmp_path, capsys):
    rng = np.random.default_rng(6)
    state = tmp_path / "state.json"
    fair = _csv(tmp_path / "fair.csv", rng.random(2000), rng.choice(["F", "M"], 2000))
    rc, out, _ = _run(capsys, state, "--add", fair, "--score", "score", "--group", "group", "--tau", "0.5")
    assert rc == 0 and "not rejected" in out and "No alarm" in out
    unfair = _csv(tmp_path / "unfair.csv", np.r_[np.full(5000, 0.1), np.full(5000, 0.9)], ["F"] * 5000 + ["M"] * 5000)
    rc, out, _ = _run(capsys, state, "--add", unfair, "--score", "score", "--group", "group")
    assert rc == 1 and "REJECTED (first at update 2" in out
    rc, out, _ = _run(capsys, state, "--add", fair, "--score", "score", "--group", "group", "--json")
    assert rc == 1 and json.loads(out)["rejected"] is True  # stays 1 while the state has rejected
    assert _run(capsys, state)[0] == 1  # printing only
    saved = state.read_bytes()
    for argv, message in [
        (("--add", fair, "--score", "nope", "--group", "group"), "score column 'nope' not found"),
        (("--add", fair, "--score", "score", "--group", "group", "--epsilon", "0.1"), "created with epsilon"),
        (("--add", _csv(tmp_path / "z.csv", [0.5], ["Z"]), "--score", "score", "--group", "group"), "'Z' not among"),
        (("--add", _csv(tmp_path / "bad.csv", [0.5, 2.0], ["F", "M"]), "--score", "score", "--group", "group"),
         "outside"),
        (("--add", tmp_path / "missing.csv", "--score", "score", "--group", "group"), "no such file"),
        (("--add", fair), "--score and --group are required"),
    ]:
        rc, out, err = _run(capsys, state, *argv)
        assert rc == 2 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert state.read_bytes() == saved  # a refused run leaves the state as it was
    state.write_text(state.read_text().replace('"updates": 3', '"updates": 4'))
    rc, _, err = _run(capsys, state)
    assert rc == 2 and "modified or damaged" in err
    rc, _, err = _run(capsys, tmp_path / "none.json")
    assert rc == 2 and "give --add or --replay" in err


def test_cli_new_state_needs_two_groups_or_groups_option(tmp_path, capsys):
    one = _csv(tmp_path / "one.csv", [0.2, 0.3], ["F", "F"])
    rc, _, err = _run(capsys, tmp_path / "s.json", "--add", one, "--score", "score", "--group", "group")
    assert rc == 2 and "only group 'F'" in err and not (tmp_path / "s.json").exists()
    rc, out, _ = _run(capsys, tmp_path / "s.json", "--add", one, "--score", "score", "--group", "group",
                      "--groups", "F", "M", "--json")
    assert rc == 0 and json.loads(out)["groups"] == {"F": 2, "M": 0} and json.loads(out)["gaps"][0]["value"] is None


def test_cli_replay(tmp_path, capsys):
    hist = tmp_path / "hist.csv"
    monitor.example_stream().to_csv(hist, index=False)
    rc, out, _ = _run(capsys, tmp_path / "s.json", "--replay", hist, "--score", "score", "--group", "group",
                      "--time-column", "day", "--json")
    res = json.loads(out)
    api = monitor.replay(monitor.example_stream(), "score", "group", "day")
    assert rc == 1 and res["updates"] == 60 and res["alarms"]["SPDD"] == api.alarms["SPDD"]
    assert 36 <= int(res["alarms"]["SPDD"]["time"]) <= 60  # after the drift on day 36, never before
    rc, _, err = _run(capsys, tmp_path / "t.json", "--replay", hist, "--score", "score", "--group", "group")
    assert rc == 2 and "--time-column" in err


# ------------------------------------------------------------------------------- figure


def test_gap_history_figure_marks_alarm_band_and_fixed_rejections():
    state = monitor.replay(monitor.example_stream(), "score", "group", "day")
    hist = state.history_frame()
    hist.loc[hist.index[0], "time"] = "<b>x</b>"
    fig = monitor_figures.gap_history_figure(hist, "SPDD", epsilon=0.05)
    names = [t.name for t in fig.data]
    assert "95% anytime confidence sequence" in names and "fixed-sample test rejects (repeated at each look)" in names
    assert any(s.x0 == state.alarms["SPDD"]["n"] for s in fig.layout.shapes)
    assert "<b>x</b>" not in json.dumps(fig.to_plotly_json(), default=str)
    spdd = hist[hist["gap"] == "SPDD"]
    assert list(fig.data[2].y) == list(spdd["value"])


# ------------------------------------------------------------------ labels: EO(τ) on labelled rows


def _brute_eo(x, g, y, tau):
    rates = {}
    for grp in np.unique(g):
        q = (g == grp) & ~np.isnan(y) & (y > tau)
        if q.any():
            rates[grp] = np.mean(x[q] > tau)
    return max(rates.values()) - min(rates.values()) if len(rates) >= 2 else None


def test_eo_uses_labelled_rows_only_and_late_labels():
    rng = np.random.default_rng(7)
    n = 3000
    g = rng.choice(["A", "B", "C"], n)
    y = rng.random(n)
    x = np.clip(y + rng.normal(0, 0.2, n) - 0.1 * (g == "A"), 0, 1)
    known = rng.random(n) < 0.4
    state = _state(("A", "B", "C"), eo_taus=(0.3, 0.6), taus=(0.5,))
    gaps = {gp.name: gp for gp in state.update(x, g, np.where(known, y, np.nan))}
    for tau in (0.3, 0.6):
        assert gaps[f"EO({tau:g})"].value == pytest.approx(_brute_eo(x, g, np.where(known, y, np.nan), tau), abs=1e-12)
    # the other labels arrive later: counted for EO only, the scores are not counted twice
    before_counts = state.counts.copy()
    gaps = {gp.name: gp for gp in state.update(x[~known], g[~known], y[~known], labels_only=True)}
    assert np.array_equal(state.counts, before_counts) and state.n == n
    for tau in (0.3, 0.6):
        assert gaps[f"EO({tau:g})"].value == pytest.approx(_brute_eo(x, g, y, tau), abs=1e-12)
    back = monitor.loads(monitor.dumps(state))
    assert np.array_equal(back.qualified, state.qualified) and back.gaps() == state.gaps()


def test_label_problems_are_refused_before_anything_changes():
    state = _state(eo_taus=(0.5,))
    before = monitor.dumps(state)
    with pytest.raises(ValueError, match="labels must be numbers"):
        state.update([0.2, 0.3], ["A", "B"], [0.5, 1.5])
    with pytest.raises(ValueError, match="needs a label column"):
        state.update([0.2], ["A"], labels_only=True)
    with pytest.raises(ValueError, match="change nothing"):
        _state().update([0.2], ["A"], [0.4], labels_only=True)
    assert monitor.dumps(state) == before


def test_eo_bands_pay_for_their_own_family_of_alpha():
    rng = np.random.default_rng(8)
    x, g = rng.random(4000), rng.choice(["A", "B"], 4000)
    plain, with_eo = _state(), _state(eo_taus=(0.2, 0.5, 0.8))
    a, b = plain.update(x, g)[0], with_eo.update(x, g)[0]
    assert with_eo.config.family_alpha == pytest.approx(0.05 / 4)
    assert b.value == a.value and b.high - b.low > a.high - a.low  # the union bound over 4 families


def test_eo_null_streams_by_simulation():
    """Rate gaps with their own row counts per threshold (the EO path): 200 streams at gap = ε,
    a random 30 % of rows labelled, 100 looks."""
    rng = np.random.default_rng(9)
    streams, k = 200, 2
    passed = np.zeros((streams, k, 1), np.int64)
    qualified = np.zeros((streams, k, 1), np.int64)
    anytime = np.zeros(streams, bool)
    naive = np.zeros(streams, bool)
    zc = _bounds.z_critical(0.05)
    for _ in range(100):
        q = rng.binomial(500, 0.3 * 0.5, (streams, k))  # labelled and label > τ, per group
        qualified[..., 0] += q
        passed[..., 0] += rng.binomial(q, [0.6, 0.65])
        _, lo, _ = _bounds.rate_gap(passed, qualified, 0.05 / 2)
        anytime |= lo[:, 0] > 0.05
        naive |= _bounds.fixed_rate_z(passed, qualified, 0.05)[:, 0] > zc
    assert anytime.mean() <= 0.05 and naive.mean() >= 0.15


def test_cli_labels_and_late_labels(tmp_path, capsys):
    rng = np.random.default_rng(10)
    n = 2000
    y = rng.random(n)
    labels = np.where(rng.random(n) < 0.5, y, np.nan)
    batch = _csv(tmp_path / "b.csv", y, rng.choice(["F", "M"], n), label=labels)
    state = tmp_path / "s.json"
    rc, out, _ = _run(capsys, state, "--add", batch, "--score", "score", "--group", "group", "--label", "label",
                      "--eo-tau", "0.5", "--json")
    res = json.loads(out)
    assert rc == 0 and [g["name"] for g in res["gaps"]] == ["SPDD", "EO(0.5)"]
    assert sum(res["eo_rows"]["EO(0.5)"].values()) == int(np.sum(labels > 0.5))
    rc, out, _ = _run(capsys, state, "--add", batch, "--score", "score", "--group", "group", "--label", "label",
                      "--labels-only", "--json")
    assert rc == 0 and json.loads(out)["n"] == n  # labels only: no new decisions
    rc, _, err = _run(capsys, state, "--add", batch, "--score", "score", "--group", "group", "--eo-tau", "0.4")
    assert rc == 2 and "eo_taus" in err
    rc, _, err = _run(capsys, tmp_path / "new.json", "--add", batch, "--score", "score", "--group", "group",
                      "--label", "label", "--labels-only")
    assert rc == 2 and "already in an existing state" in err
