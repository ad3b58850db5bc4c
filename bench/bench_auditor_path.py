"""Benchmark: the auditor's path at 1,000,000 rows — CLI `audit`, the HTML report, the app's cards
and intervals — on 2 attributes (sex, age band) + their intersection, with labels.

    python bench/bench_auditor_path.py              # run, print, update bench/RESULTS.md
    python bench/bench_auditor_path.py --n 200000   # smaller (RESULTS.md is updated only at 10^6)

The CLI commands run as subprocesses (wall time, CPU time of the child, its peak RSS); the app's
computations (what `app_pages/_audit_data.py` calls) run in this process. The machine is shared,
so the load average goes with the numbers and CPU time is given next to wall time. Results go
between ``<!-- bench_auditor_path:start -->`` and ``<!-- bench_auditor_path:end -->``.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/ (already there when run as a script)
from _results import REPO, machine, publish  # noqa: E402
from bench_audit import make_data  # noqa: E402

from fairviz import metrics  # noqa: E402
from fairviz.app_services.audit_view import view_intervals, view_permutation  # noqa: E402
from fairviz.app_services.budget import ON_REQUEST_N_BOOT, interval_plan, permutation_count  # noqa: E402
from fairviz.groups import INTERSECTION_SEPARATOR, audit_attributes  # noqa: E402
from fairviz.metrics._bootstrap import STATISTICS, _replicates, _SortedBoot  # noqa: E402
from fairviz.metrics._little import little_replicates, plan_bootstrap  # noqa: E402
from fairviz.metrics._resample import _seed_sequences  # noqa: E402
from fairviz.significance import shared_nulls  # noqa: E402

SECTION = "bench_auditor_path"


def write_table(n: int, folder: Path) -> Path:
    scores, attrs, labels = make_data(n)
    path = folder / f"scores_{n}.csv"
    pd.DataFrame({"score": scores, "sex": attrs["sex"], "age": attrs["age"], "label": labels}).to_csv(path, index=False)
    return path


def _tree(pid: int) -> list[int]:
    """The process and its descendants (children of any of its threads: workers fork from threads)."""
    out = [pid]
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            kids = Path(f"/proc/{pid}/task/{t}/children").read_text().split()
        except OSError:
            continue
        for k in kids:
            out += _tree(int(k))
    return out


def _memory(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB (0, 0 once it is gone)."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, value = line.split()[:2]
            if key == "Pss:":
                pss = int(value)
            elif key == "Rss:":
                rss = int(value)
    except (OSError, ValueError):
        pass
    return pss, rss


def _command(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "fairviz", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)


def run_cli(args: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the child and its workers) of `python -m fairviz ARGS`, nothing else
    running beside it (the memory is measured in a run of its own: `peak_memory`)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = _command(args)
    err = proc.communicate()[1]
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(err[-2000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def peak_memory(args: list[str]) -> tuple[float, float]:
    """(largest RSS of one process, largest summed PSS of the process tree), in MB (2²⁰ bytes),
    of `python -m fairviz ARGS`, sampled from /proc every 50 ms in a run of its own (the
    sampling costs CPU, so the timed run is another). The worker processes share the parent's
    pages: the sum of their proportional set sizes (PSS) is what the command holds. NaN where
    /proc is missing."""
    if not Path("/proc/self/smaps_rollup").exists():
        return float("nan"), float("nan")
    proc = _command(args)
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))
    reader.start()
    one = total = 0
    while proc.poll() is None:
        mem = [_memory(q) for q in _tree(proc.pid)]
        total = max(total, sum(m[0] for m in mem))
        one = max([one] + [m[1] for m in mem])
        time.sleep(0.05)
    reader.join()
    if proc.returncode:
        raise RuntimeError("".join(err)[-2000:])
    return one / 1024, total / 1024


def _peaks(rss: float, pss: float) -> str:
    return f"peak memory {pss:.0f} MB (PSS summed over the process and its workers; largest one process {rss:.0f} MB RSS)"


def timed(fn):
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def bootstrap_costs(n: int, write: bool, k: int = 48) -> int:
    """CPU per bootstrap resample at ``n`` rows, per statistic and all four together (one shared
    draw), for each grouping of the auditor's path, and the one-off set-up (section ``_boot``)."""
    scores, attrs, labels = make_data(n)
    views = {"sex (2 groups)": attrs["sex"], "age (3)": attrs["age"],
             "sex × age (6)": intersection(attrs["sex"], attrs["age"])}
    seeds = _seed_sequences(0, k + 8)
    rows, little = [], []
    for name, groups in views.items():
        p = metrics.prepare(scores, groups, labels)
        _replicates(p, STATISTICS, 1, 0)  # the sorts the prepared input caches (shared with the exact metrics)
        cells = []
        for stats in [(s,) for s in STATISTICS] + [STATISTICS]:
            engine, _, setup = timed(lambda stats=stats, p=p: _SortedBoot(p, stats))
            run = engine.worker()
            run(seeds[:8])  # warm-up
            _, _, c = timed(lambda run=run: [run(seeds[a : a + 8]) for a in range(8, k + 8, 8)])
            cells.append(f"{1e3 * c / k:.1f} ms")
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {setup:.2f} s | ≈ {c / k * 1000 + setup:.0f} s |")
        print(rows[-1], flush=True)
        little.append(_little_cost(p, name))
    body = "\n".join([
        f"### Bootstrap cost per resample at {n:,} rows (`bench/bench_auditor_path.py --only-bootstrap`)",
        "",
        f"CPU (`time.process_time`) per resample, one thread, {k} resamples after a warm-up batch, labels given. "
        "Each resample draws one count vector (≈ 3.5 ms of the figures) that every statistic asked for reads; "
        "\"all four\" is what `audit` runs. Set-up: the one-off work of an `audit` call beyond the sorts the "
        "prepared input already holds (SPEO's entries, SRCC's label order).",
        "",
        "| grouping | SPDD | SPEO | PCC | SRCC | all four | set-up (all four) | all four × 1,000 + set-up |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Before (the engine this replaced, same data, load ≈ 6–12, 2026-12-01 03:45 UTC; 10 resamples per call with "
        "its set-up spread over them, which inflates SPEO most: its 2n-entry sort ran in every call): "
        "SPDD / SPEO / PCC / SRCC per resample 8.2 / 112.7 / 8.4 / 53.2 ms by sex, 34.2 / 139.0 / 11.3 / 60.5 ms by age, "
        "52.8 / 212.6 / 11.3 / 52.0 ms by the intersection, each statistic with its own pass (SPDD of two groups its "
        "own draw): ≈ 750 s of CPU for 1,000 resamples of the three groupings. Before the compiled passes of SPEO and "
        "many-group SPDD (`fairviz/_jit.py`; the numpy kernels, same machine, 2026-12-02 00:53 UTC): SPDD / SPEO / "
        "all four 4.9 / 37.1 / 68.1 ms by sex, 26.5 / 47.9 / 98.0 ms by age, 37.6 / 63.4 / 120.9 ms by the "
        "intersection; the little bootstraps 1.71 / 2.41 / 3.62 ms per resample.",
        "",
        "The bag of little bootstraps (what `audit` runs from 200,000 rows on; `fairviz.metrics._little`): "
        "1,000 resamples of all four statistics, subsets and set-up included, CPU per resample (one thread):",
        "",
        "| grouping | plan | CPU per resample | × 1,000 |",
        "|---|---|---|---|",
        *little,
        "",
        f"Machine: {machine()}.",
    ])
    publish(SECTION + "_boot", body, write=write)


def _little_cost(p, name: str, n_boot: int = 1000) -> str:
    """One row: CPU per resample of the little bootstraps of all four statistics (set-up included)."""
    full = {"spdd": p.spdd(), "speo": p.speo(), "pcc": p.pcc(), "srcc": p.srcc()}
    plan = plan_bootstrap("little", p.counts, n_boot)
    before = os.environ.get("FAIRVIZ_THREADS")
    os.environ["FAIRVIZ_THREADS"] = "1"
    try:
        _, _, c = timed(lambda: little_replicates(p, STATISTICS, n_boot, 0, plan, full=full))
    finally:
        if before is None:
            del os.environ["FAIRVIZ_THREADS"]
        else:
            os.environ["FAIRVIZ_THREADS"] = before
    row = f"| {name} | {plan.describe()} | {1e3 * c / n_boot:.2f} ms | {c:.1f} s |"
    print(row, flush=True)
    return row
    return 0


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (pd.Series(a).astype(str) + INTERSECTION_SEPARATOR + pd.Series(b).astype(str)).to_numpy()


def cli_costs(n: int, write: bool, n_boots: list[int]) -> int:
    """CLI `audit` of ``n`` rows, 2 attributes + intersection, labels: wall, CPU and peak memory
    of the command at each ``--n-boot`` (section ``_cli``)."""
    load0 = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = write_table(n, Path(tmp))
        for b in n_boots:
            cmd = ["audit", str(path), "--score", "score", "--group", "sex", "--group", "age", "--label", "label",
                   "--n-boot", str(b)]
            w, c = run_cli(cmd)
            rss, pss = peak_memory(cmd)
            what = "no intervals" if b == 0 else f"{b:,} resamples" + (" (default)" if b == 1000 else "")
            rows.append(f"| `--n-boot {b}` ({what}) | {w:.1f} s | **{c:.1f} s** | {pss:.0f} MB | {rss:.0f} MB |")
            print(rows[-1], flush=True)
    load1 = os.getloadavg()
    body = "\n".join([
        f"### CLI `audit` at {n:,} rows (`bench/bench_auditor_path.py --only-cli`)",
        "",
        "`python -m fairviz audit FILE.csv --group sex --group age --label label` (3 groupings: sex, age band, "
        "their intersection; automatic permutation tests), a subprocess: its wall time, CPU time (with its "
        "workers) and peak memory, sampled from /proc every 50 ms in a second run (MB = 2²⁰ bytes): the PSS summed over the "
        "process and its workers (they share the parent's pages), and the largest RSS of one process.",
        "",
        "| run | wall | CPU | peak memory (summed PSS) | largest process (RSS) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Machine: {machine()}; load average at the end {load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f} (at the "
        f"start {load0[0]:.1f}). Wall time under this load is not the target's wall time: CPU time is the work.",
    ])
    publish(SECTION + "_cli", body, write=write)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000, help="rows for the CLI audit with its default intervals")
    ap.add_argument("--no-report-labels", action="store_true", help="skip the report with labels (the slow one)")
    ap.add_argument("--only-bootstrap", action="store_true",
                    help="only the per-statistic bootstrap costs (their own section)")
    ap.add_argument("--only-cli", action="store_true", help="only the CLI audit at --n-boot values (own section)")
    ap.add_argument("--cli-n-boot", type=int, action="append", default=None,
                    help="with --only-cli: --n-boot values to run (repeat; default 0 and 1000)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    n = args.n
    if args.only_bootstrap:
        return bootstrap_costs(n, write=not args.no_write and n == 1_000_000)
    if args.only_cli:
        return cli_costs(n, not args.no_write and n == 1_000_000, args.cli_n_boot or [0, 1000])
    load0 = os.getloadavg()
    rows: list[str] = []

    def add(what, wall, cpu, note=""):
        rows.append(f"| {what} | **{wall:.2f} s** | {cpu:.2f} s | {note} |")
        print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big, small = write_table(n, folder), write_table(args.small, folder)
        common = ["--score", "score", "--group", "sex", "--group", "age", "--label", "label"]
        w, c = run_cli(["audit", str(big), *common, "--n-boot", "0"])
        rss, pss = peak_memory(["audit", str(big), *common, "--n-boot", "0"])
        add(f"CLI `audit`, {n:,} rows, `--n-boot 0` (exact metrics, LL144 tables, no intervals)", w, c,
            f"3 groupings; {_peaks(rss, pss)}")
        w, c = run_cli(["audit", str(small), *common])
        add(f"CLI `audit`, {args.small:,} rows, default intervals (1,000 resamples, automatic permutations)", w, c,
            "3 groupings")
        scores, attrs, labels = make_data(n)
        two = {"sex": attrs["sex"], "age": attrs["age"]}
        tiny_x, tiny_a, tiny_y = make_data(2000)  # a running server has imported what an audit needs
        audit_attributes(tiny_x, {"sex": tiny_a["sex"], "age": tiny_a["age"]}, tiny_y, n_boot=0)
        plan = interval_plan(n, True)
        nulls: dict = {}  # the page's store of permutation nulls for this upload (`_audit_data.null_store`)
        res, w, c = timed(lambda: audit_attributes(scores, two, labels, n_boot=0, random_state=0))
        view = res["sex"]
        add("app metric cards (their values): `audit_attributes` (n_boot = 0), first audit of the process", w, c,
            "the page draws the cards when this returns")
        n_perm = permutation_count(view.n, len(view.groups))
        if plan.n_boot:  # the page computes the intervals (and with them the tests) right after the charts
            with shared_nulls(nulls):
                res2, w2, c2 = timed(lambda: view_intervals(view, plan.n_boot))
            add(f"app intervals and p-values, computed automatically ({plan.n_boot} resamples; SPDD's test "
                f"{res2.spdd.detail.n_perm:,} shuffles, p-value resolution {1 / (res2.spdd.detail.n_perm + 1):.1e}; "
                f"SPEO's {res2.speo.detail.n_perm}) of one view, after the cards", w + w2, c + c2,
                f"intervals {w2:.2f} s / {c2:.2f} s CPU, under a spinner; the wall time is from the upload's audit")
        else:  # the cards' p-value caption, then the intervals on request
            with shared_nulls(nulls):
                perm, w2, c2 = timed(lambda: view_permutation(view, n_perm))
            add(f"app cards' SPDD p-value caption: permutation test ({n_perm:,} shuffles, p-value resolution "
                f"{perm.resolution:.1e}) of one view, after the cards", w + w2, c + c2,
                f"permutations {w2:.2f} s / {c2:.2f} s CPU, under a progress bar; the wall time is from the upload's audit")
            with shared_nulls(nulls):
                _, w, c = timed(lambda: view_intervals(view, ON_REQUEST_N_BOOT))
            add(f"app intervals on demand: `view_intervals` of one view (sex), labels, n_boot = {ON_REQUEST_N_BOOT} "
                "(its SPDD test read from the cards' draws)", w, c)
        out = folder / "r.html"
        plain = ["report", str(big), "--score", "score", "--group", "sex", "--group", "age", "--out", str(out)]
        w, c = run_cli(plain)
        rss, pss = peak_memory(plain)
        add(f"CLI `report`, {n:,} rows, no labels, defaults (n_boot = 200)", w, c,
            f"{_peaks(rss, pss)}; file {out.stat().st_size / 1e6:.1f} MB")
        if not args.no_report_labels:
            w, c = run_cli(["report", str(big), *common, "--out", str(out)])
            rss, pss = peak_memory(["report", str(big), *common, "--out", str(out)])
            add(f"CLI `report`, {n:,} rows, labels, defaults (n_boot = 200)", w, c,
                f"{_peaks(rss, pss)}; file {out.stat().st_size / 1e6:.1f} MB")
    load1 = os.getloadavg()
    body = "\n".join([
        "## The auditor's path at 10⁶ rows (`bench/bench_auditor_path.py`)",
        "",
        f"{n:,} rows (CSV), attributes sex (2 groups) and age band (3) and their intersection (6), labels. "
        "CLI runs are subprocesses (CPU of the child and its workers; memory sampled from /proc every 50 ms in a "
        "second run of each, MB = 2²⁰ bytes); app rows are the calls the Audit page makes.",
        "",
        "| what | wall | CPU | note |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Machine: {machine()}; load average at the end {load1[0]:.1f} / {load1[1]:.1f} / {load1[2]:.1f} "
        f"(at the start {load0[0]:.1f}). On this shared 2-core machine wall time is inflated by the load; CPU "
        "time is the work.",
    ])
    publish(SECTION, body, write=not args.no_write and n == 1_000_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
