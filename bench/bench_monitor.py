"""Simulations and timings of `fairviz.monitor`: false alarms at the hardest null, detection delay,
and the cost of an update.

    nice -n 10 python bench/bench_monitor.py               # everything; writes the tables
    python bench/bench_monitor.py --quick --no-write       # a small run to try it

Streams: group 0 scores are 0.75·Beta(2, 2); group 1 scores are the same shifted up by d, so
SPDD = W1 = d exactly (the distributions do not cross, the case the fixed-sample z-test is made
for). Group 1 is either half of the stream or a 10 % minority. Scores are drawn as exact
multinomial counts on the monitor's grid (2^12 cells here; the production default is 2^16) —
the same counts as drawing each score and binning it. For DP(τ) at τ = 0.5 each group's
selection is a Bernoulli draw with rates p and p + gap. The monitor looks every 1,000 decisions up
to 100,000 (100 looks; its confidence sequence is time-uniform, so these looks are a subset of
the times it covers), and for detection delays on further, every 5 % more decisions, up to 4
million. Seeded: the same seed gives the same tables.

Results go to the ``bench_monitor`` section of bench/RESULTS.md and to the marked sections of
docs/MONITORING.md (atomic writes; other text is kept).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import REPO, machine, update_section  # noqa: E402

from fairviz import monitor  # noqa: E402
from fairviz.monitor import _bounds  # noqa: E402

DOC = REPO / "docs" / "MONITORING.md"
EPS, ALPHA, BITS, TAU = 0.05, 0.05, 12, 0.5
LOOK = 1_000


def beta22_cdf(u):
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def bin_probs(shift: float, bits: int = BITS) -> np.ndarray:
    """P(score in each monitor bin) for 0.75·Beta(2,2) + shift: bin 0 = {0}, bin b = ((b−1)/B, b/B]."""
    edges = np.arange((1 << bits) + 1) / (1 << bits)
    p = np.diff(beta22_cdf((edges - shift) / 0.75))
    p = np.concatenate([[0.0], np.maximum(p, 0.0)])
    return p / p.sum()


def schedule(horizon: int) -> np.ndarray:
    """Look times: every 1,000 decisions to 100,000, then 5 % more each time, up to `horizon`."""
    looks = list(range(LOOK, min(horizon, 100_000) + 1, LOOK))
    while looks[-1] < horizon:
        looks.append(min(horizon, int(math.ceil(looks[-1] * 1.05 / LOOK)) * LOOK))
    return np.array(looks, dtype=np.int64)


def clopper_pearson(x: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta  # scipy only here, for the exact binomial interval

    a = 1 - level
    lo = 0.0 if x == 0 else float(beta.ppf(a / 2, x, n - x + 1))
    hi = 1.0 if x == n else float(beta.ppf(1 - a / 2, x + 1, n - x))
    return lo, hi


def simulate(rng, streams: int, minority: float, gap: float, horizon: int, *, kind: str, chunk: int = 200):
    """``(first_cs, first_fx, last_fx)``: the first look (decisions) at which each stream's anytime
    test and its repeated fixed-sample z-test alarm (inf: never), and whether the fixed-sample test
    rejects at the last look alone (the one planned look it is made for)."""
    looks = schedule(horizon)
    zc = _bounds.z_critical(ALPHA)
    first_cs = np.full(streams, np.inf)
    first_fx = np.full(streams, np.inf)
    if kind == "spdd":
        probs = (bin_probs(0.0), bin_probs(gap))
        counts = np.zeros((streams, 2, (1 << BITS) + 1), dtype=np.int64)
    else:
        p0 = 1.0 - beta22_cdf((TAU / 0.75))
        rates = (p0, p0 + gap)
        above = np.zeros((streams, 2, 1), dtype=np.int64)
        n = np.zeros((streams, 2), dtype=np.int64)
    prev = 0
    for at in looks:
        m = at - prev
        prev = at
        n1 = rng.binomial(m, minority, streams)
        sizes = (m - n1, n1)
        if kind == "spdd":
            for g in (0, 1):
                counts[:, g] += rng.multinomial(sizes[g], probs[g])
        else:
            for g in (0, 1):
                above[:, g, 0] += rng.binomial(sizes[g], rates[g])
                n[:, g] += sizes[g]
        active = np.flatnonzero(np.isinf(first_cs) | (np.isinf(first_fx) & (at <= 100_000)))
        if active.size == 0:
            break  # every stream has alarmed under both tests: nothing left to learn
        for s in range(0, active.size, chunk):
            idx = active[s:s + chunk]
            if kind == "spdd":
                t, nn = _bounds.survival(counts[idx])
                lo, _ = _bounds.spdd_bounds(t, nn, ALPHA)
                z = _bounds.fixed_spdd_z(counts[idx], EPS)
            else:
                _, lo, _ = _bounds.rate_gap(above[idx], n[idx], ALPHA)
                lo = lo[:, 0]
                z = _bounds.fixed_rate_z(above[idx], n[idx], EPS)[:, 0]
            hit = idx[(lo > EPS) & np.isinf(first_cs[idx])]
            first_cs[hit] = at
            hitz = idx[(z > zc) & np.isinf(first_fx[idx])]
            first_fx[hitz] = at
    if kind == "spdd":
        z_last = np.concatenate([_bounds.fixed_spdd_z(counts[s:s + chunk], EPS) for s in range(0, streams, chunk)])
    else:
        z_last = _bounds.fixed_rate_z(above, n, EPS)[:, 0]
    return first_cs, first_fx, (z_last > zc) & (prev == horizon)


def _share(x: int, n: int) -> str:
    lo, hi = clopper_pearson(x, n)
    return f"{x / n:.3f} [{lo:.3f}, {hi:.3f}] ({x}/{n})"


def false_alarms(rng, streams: int, horizon: int, log) -> str:
    rows = ["| gap | group 1 share | streams | anytime test: share ever alarming (95 % CP) | "
            "fixed-sample test repeated at every look | fixed-sample test at the 100th look only |",
            "|---|---|---|---|---|---|"]
    for kind in ("spdd", "dp"):
        for minority in (0.5, 0.1):
            t0 = time.perf_counter()
            first_cs, first_fx, last_fx = simulate(rng, streams, minority, EPS, horizon, kind=kind)
            once = int(last_fx.sum())
            name = "SPDD" if kind == "spdd" else f"DP({TAU:g})"
            rows.append(f"| {name} = ε = {EPS:g} | {minority:.0%} | {streams} | "
                        f"{_share(int(np.isfinite(first_cs).sum()), streams)} | "
                        f"{_share(int(np.isfinite(first_fx).sum()), streams)} | {_share(once, streams)} |")
            log(f"  null {name} minority {minority}: {time.perf_counter() - t0:.1f} s")
    return "\n".join(rows)


def _delay(first: np.ndarray, horizon: int) -> tuple[str, str, str]:
    found = np.isfinite(first)
    share = f"{found.mean():.0%}"
    def q(p):
        v = np.quantile(np.where(found, first, np.inf), p, method="higher")
        return f"> {horizon:,}" if not np.isfinite(v) else f"{int(v):,}"
    return q(0.5), q(0.9), share


def power(rng, streams: int, horizon: int, log) -> str:
    rows = ["| gap | true gap | group 1 share | streams | median delay (decisions) | 90th percentile | "
            f"share alarmed by {horizon:,} |", "|---|---|---|---|---|---|---|"]
    for kind in ("spdd", "dp"):
        for mult in (1.5, 2.0, 4.0):
            for minority in (0.5, 0.1):
                t0 = time.perf_counter()
                first_cs, _, _ = simulate(rng, streams, minority, mult * EPS, horizon, kind=kind)
                med, p90, share = _delay(first_cs, horizon)
                name = "SPDD" if kind == "spdd" else f"DP({TAU:g})"
                rows.append(f"| {name} | {mult:g} ε = {mult * EPS:.3f} | {minority:.0%} | {streams} | {med} | {p90} | {share} |")
                log(f"  power {name} {mult}x minority {minority}: {time.perf_counter() - t0:.1f} s")
    return "\n".join(rows)


def band_check(rng, streams: int = 2000, t_max: int = 300) -> str:
    """The time-uniform DKW band itself at *every* t ≤ t_max (the early times that the 1,000-step
    looks above skip): the share of uniform streams whose sup_x |F̂_t − F| ever exceeds r(t, α)."""
    u = rng.random((streams, t_max))
    ever = np.zeros(streams, bool)
    worst = 0.0
    for t in range(1, t_max + 1):
        srt = np.sort(u[:, :t], axis=1)
        i = np.arange(1, t + 1)
        sup = np.maximum(i / t - srt, srt - (i - 1) / t).max(axis=1)  # exact KS distance to U(0, 1)
        r = float(_bounds.dkw_radius(t, ALPHA))
        ever |= sup > r
        if r < 1.0:  # r(t) is capped at 1 (no information) for the first few t
            worst = max(worst, float((sup / r).max()))
    x = int(ever.sum())
    return (f"Band check: {streams} uniform streams, every t = 1 … {t_max}, α = {ALPHA:g}: the band "
            f"sup_x |F̂_t − F| ≤ r(t, α) was ever violated in {_share(x, streams)} streams; the largest "
            f"ratio sup / r seen (where r < 1) was {worst:.2f}.")


def speed(rows: int = 1_000_000, repeats: int = 3) -> str:
    import pandas as pd

    from fairviz.cli import main as cli_main

    rng = np.random.default_rng(0)
    g = np.where(rng.random(rows) < 0.4, "A", "B").astype(object)
    x = rng.beta(2.0, 3.0, rows)
    api = []
    for _ in range(repeats):
        state = monitor.MonitorState(monitor.MonitorConfig(("A", "B"), taus=(0.5,)))
        t0 = time.perf_counter()
        state.update(x, g)
        api.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "batch.csv"
        pd.DataFrame({"score": x, "group": g}).to_csv(csv, index=False)
        cli = []
        for i in range(repeats):
            path = Path(tmp) / f"s{i}.json"
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                cli_main(["monitor", str(path), "--add", str(csv), "--score", "score", "--group", "group",
                          "--tau", "0.5", "--json"])
            cli.append(time.perf_counter() - t0)
        # a second batch into an existing state: load, verify, add, save
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            cli_main(["monitor", str(path), "--add", str(csv), "--score", "score", "--group", "group", "--json"])
        again = time.perf_counter() - t0
        size = path.stat().st_size
    return "\n".join([
        "| step | best of 3 (s) |", "|---|---|",
        f"| `MonitorState.update` with a 1,000,000-row batch (2 groups, 1 τ, 2^16 cells) | {min(api):.3f} |",
        f"| `python -m fairviz monitor` new state: read a 1,000,000-row CSV, update, save | {min(cli):.3f} |",
        f"| the same into the existing state (load + verify hash, update, save) | {again:.3f} |",
        "",
        f"State file after 2,000,000 rows: {size / 1024:.0f} KiB (2 groups × 65,537 int64 counts, "
        "zlib-compressed, plus one history line per update; it does not grow with the rows).",
    ])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--null-streams", type=int, default=1000)
    ap.add_argument("--power-streams", type=int, default=200)
    ap.add_argument("--quick", action="store_true", help="100 null / 40 power streams, shorter horizon")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--band-only", action="store_true", help="only the direct check of the DKW band")
    args = ap.parse_args(argv)
    if args.band_only:
        band = band_check(np.random.default_rng(args.seed + 1))
        print(band)
        if not args.no_write:
            update_section("monitor_band", band, DOC)
        return 0
    null_n, pow_n, pow_h = args.null_streams, args.power_streams, 4_000_000
    if args.quick:
        null_n, pow_n, pow_h = 100, 40, 1_000_000
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    fa = false_alarms(rng, null_n, 100_000, log)
    pw = power(rng, pow_n, pow_h, log)
    sp = speed()
    band = band_check(np.random.default_rng(args.seed + 1))
    head = f"Machine: {machine()}. Seed {args.seed}; simulation took {time.perf_counter() - t0:.0f} s."
    print(head, fa, band, pw, sp, sep="\n\n")
    if not args.no_write:
        update_section("monitor_false_alarms", head + "\n\n" + fa, DOC)
        update_section("monitor_band", band, DOC)
        update_section("monitor_power", pw, DOC)
        update_section("monitor_speed", sp, DOC)
        update_section("bench_monitor", "## Monitor (`bench/bench_monitor.py`)\n\n" + head + "\n\n" + sp
                       + "\n\nFalse alarms and detection delays: [docs/MONITORING.md](../docs/MONITORING.md).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
