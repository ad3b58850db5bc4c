"""Streamlit helpers shared by the pages: caching, the current run, errors, job progress.

Only Streamlit glue lives here; every computation is a `fairviz` function with its own test.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import streamlit as st

from fairviz import app_support, figures, jobs, theme
from fairviz.paths import models_dir
from fairviz.safety import isolate_bidi
from fairviz.tabular import MAX_GROUPS

#: Exceptions that mean "the input is wrong" (fairviz raises these with a message saying what to
#: fix); they become an `st.error`, never a traceback. Parser/Unicode/Arrow errors subclass
#: ValueError.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, MemoryError)
OUT_OF_MEMORY = ("out of memory: this data is too large for the server; sample it, or audit it with the "
                 "command line (`python -m fairviz audit`) on a machine with more memory")

CURRENT_RUN_KEY = "fv_current_run"
_APP_SCRIPT = Path(__file__).resolve().parent.parent / "app.py"
_KEEP_KEY = "fv__kept_widget_keys"
#: Caches keyed by uploaded data hold large arrays: few entries, for an hour at most.
UPLOAD_TTL_S = 3600
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


# ---------------------------------------------------------------------------------------------
# text from users (file, column and group names) inside Streamlit markdown

_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$:")


def md(text) -> str:
    """``text`` with every markdown-special character escaped, so a file, column or group name
    is shown as written (never as a link, image, formula or formatting); right-to-left text is
    isolated so that it cannot reorder the rest of the line."""
    text = isolate_bidi(text)
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text).replace("\n", " ")


def code(text) -> str:
    """``text`` as inline code (backticks inside it are replaced, so it cannot close the span)."""
    return "`" + str(text).replace("`", "ʼ").replace("\n", " ") + "`"


# ---------------------------------------------------------------------------------------------
# errors


@contextlib.contextmanager
def user_errors(context: str | None = None, *, stop: bool = True) -> Iterator[None]:
    """Show a bad-input error from fairviz as a clear `st.error` (and stop this page run)."""
    try:
        yield
    except USER_ERRORS as err:
        msg = str(err) or type(err).__name__
        if isinstance(err, MemoryError):
            msg = OUT_OF_MEMORY
        if isinstance(err, FileNotFoundError) and not str(err):
            msg = "file not found"
        st.error(f"**{md(context)}:** {md(msg)}" if context else md(msg), icon=":material/error:")
        if stop:
            st.stop()


# ---------------------------------------------------------------------------------------------
# runs


def models_root() -> Path:
    return models_dir()


def _signature(root: Path) -> tuple:
    """Cheap fingerprint of the run folders (name + mtime): the run list is re-read when it changes."""
    if not root.is_dir():
        return ()
    out = []
    with os.scandir(root) as it:
        for e in it:
            if e.is_dir() and not e.name.startswith("."):
                try:
                    out.append((e.name, e.stat().st_mtime_ns))
                except OSError:
                    continue
    return tuple(sorted(out))


@st.cache_data(show_spinner=False, max_entries=8)
def _list_runs(root: str, signature: tuple) -> tuple[list, list]:
    from fairviz.runs import list_runs

    found = list_runs(root)
    return list(found), [(str(p), reason) for p, reason in found.skipped]


def runs() -> list:
    """RunInfo of every valid run in the models folder (cached until a folder changes)."""
    root = models_root()
    return _list_runs(str(root), _signature(root))[0]


def skipped_runs() -> list[tuple[str, str]]:
    root = models_root()
    return _list_runs(str(root), _signature(root))[1]


def run_infos_by_name() -> dict[str, Any]:
    return {i.name: i for i in runs()}


@st.cache_resource(show_spinner="Loading the run…", max_entries=24)
def _load_run(path: str, mtime_ns: int):
    from fairviz.runs import load_run

    return load_run(path)


def load_run(name: str):
    """The `Run` called ``name`` from the models folder (cached; do not mutate it)."""
    path = models_root() / name
    if not path.is_dir():
        raise FileNotFoundError(f"run {name!r} is not in {models_root()}; pick another run or train one")
    return _load_run(str(path), path.stat().st_mtime_ns)


@st.cache_data(show_spinner=False, max_entries=64)
def _predictions(path: str, mtime_ns: int):
    # Only predictions.csv is needed: no torch import, no network rebuilt (seconds on a cold server).
    from fairviz import runs

    return runs.read_predictions(runs.check_run_folder(path))


def predictions(name: str):
    """All stored predictions (validation and test rows) of run ``name`` (cached; do not mutate)."""
    path = models_root() / name
    if not path.is_dir():
        raise FileNotFoundError(f"run {name!r} is not in {models_root()}")
    return _predictions(str(path), path.stat().st_mtime_ns)


@st.cache_data(show_spinner=False, max_entries=64)
def _test_predictions(path: str, mtime_ns: int):
    preds = _predictions(path, mtime_ns)
    return preds[preds["split"] == "test"].reset_index(drop=True)


def test_predictions(name: str):
    """Test-split predictions (``score, label, group, split``) of run ``name`` (cached)."""
    path = models_root() / name
    if not path.is_dir():
        raise FileNotFoundError(f"run {name!r} is not in {models_root()}")
    return _test_predictions(str(path), path.stat().st_mtime_ns)


@st.cache_resource(show_spinner=False, max_entries=64)
def _run_curve(path: str, mtime_ns: int):
    from fairviz.metrics import dp_curve

    preds = _test_predictions(path, mtime_ns)
    return dp_curve(preds["score"].to_numpy(), preds["group"].to_numpy())


def run_curve(name: str):
    """DP(τ) of run ``name`` on its test split (computed once, then cached)."""
    path = models_root() / name
    if not path.is_dir():
        raise FileNotFoundError(f"run {name!r} is not in {models_root()}")
    return _run_curve(str(path), path.stat().st_mtime_ns)


def current_run_name() -> str | None:
    """The run the pages show: the one chosen in this session, else the default shipped run."""
    infos = runs()
    names = {i.name for i in infos}
    chosen = st.session_state.get(CURRENT_RUN_KEY)
    if chosen in names:
        return chosen
    default = app_support.pick_default_run(infos)
    name = default.name if default is not None else None
    st.session_state[CURRENT_RUN_KEY] = name
    return name


def set_current_run(name: str | None) -> None:
    st.session_state[CURRENT_RUN_KEY] = name


def current_run_info():
    name = current_run_name()
    return run_infos_by_name().get(name) if name else None


def no_runs_message() -> None:
    """What to do when the models folder has no runs yet (instead of failing)."""
    st.info(
        f"There are no runs in `{models_root()}` yet. Create them with **`make models`** (the six "
        "methods at α = 4 and the λ_W sweep), or train one on the **Train** page. "
        "You can also audit any model's scores by uploading a CSV on the **Audit** page.",
        icon=":material/info:",
    )
    bad = skipped_runs()
    if bad:
        with st.expander(f"{len(bad)} folder(s) in the models folder are not readable runs"):
            for path, reason in bad:
                st.markdown(f"{code(Path(path).name)}: {md(reason)}")


def _on_pick_run() -> None:
    st.session_state[CURRENT_RUN_KEY] = st.session_state.get("fv_run_picker")


def sidebar() -> None:
    """Sidebar: the current-run picker (shared by every page) and where runs live."""
    infos = runs()
    with st.sidebar:
        if infos:
            names = [i.name for i in infos]
            current = current_run_name()
            # the widget mirrors the session's current run (set before the widget is created)
            st.session_state["fv_run_picker"] = current if current in names else names[0]
            st.selectbox(
                "Current run", names, key="fv_run_picker", on_change=_on_pick_run,
                help="The run the Home, Audit and Representation pages show. Train a new one on the Train page.",
            )
            info = run_infos_by_name().get(current)
            if info is not None:
                st.caption(
                    f"{info.method} · α = {info.alpha:g} · λ_W = {info.lambda_w:g} · seed {info.seed} · "
                    f"{getattr(info, 'bias_mode', '')} bias"
                )
        else:
            st.caption("No runs yet.")
        st.caption(f"Runs folder: `{models_root()}`")
        bad = skipped_runs()
        if bad:
            st.warning(f"{len(bad)} unreadable run folder(s) skipped; see Home.", icon=":material/warning:")


def ensure_navigation() -> None:
    """Make sure the page runs inside `app.py`'s `st.navigation`.

    Streamlit still has a legacy mode for apps with a folder called `pages/`: when the first
    request a server gets is a direct link to a page (e.g. a bookmarked `/audit`), it runs
    `pages/audit.py` alone, with an automatic menu listing every file in `pages/` (including
    `_common.py`) and without `app.py`'s page settings. The legacy flag is process-wide and only
    `st.navigation` clears it. So a page that finds itself run that way runs `app.py` right here
    (its navigation then runs this page again, properly) and stops the outer run. No rerun is
    used, so the click or upload that triggered this run is not lost. (Streamlit internals; if
    they change, this does nothing.)
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - Streamlit moved it
        return
    if getattr(PagesManager, "uses_pages_directory", None):
        import runpy

        PagesManager.uses_pages_directory = False
        runpy.run_path(str(_APP_SCRIPT), run_name="__main__")
        st.stop()


def widget_defaults(defaults: dict, options: dict | None = None) -> None:
    """Give widgets their starting values through session state, and keep them across pages.

    Streamlit forgets a widget's value when its page is left; re-assigning the key at the top of
    every run turns it into ordinary session state that survives (the documented way). Widgets
    using these keys must not pass their own default (``value=``/``index=``/``default=``).
    ``options`` (key → allowed values) resets a stored value that is no longer allowed, e.g. a
    run that was deleted.
    """
    options = options or {}
    keep = st.session_state.setdefault(_KEEP_KEY, set())
    keep.update(defaults)
    for key, default in defaults.items():
        if key in st.session_state:
            value = st.session_state[key]
            allowed = options.get(key)
            if allowed is not None:
                allowed = list(allowed)
                if isinstance(value, list):
                    value = [v for v in value if v in allowed]
                elif value not in allowed:
                    value = default
            st.session_state[key] = value
        else:
            st.session_state[key] = default


def keep_widget_values() -> None:
    """Re-assign every registered widget value, on every page, so that leaving a page does not
    reset its form (Streamlit drops the state of widgets that a run does not draw)."""
    for key in st.session_state.get(_KEEP_KEY, ()):
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def page_header(title: str, subtitle: str | None = None) -> None:
    ensure_navigation()
    keep_widget_values()
    sidebar()
    st.title(title)
    if subtitle:
        st.caption(subtitle)


# ---------------------------------------------------------------------------------------------
# drawing


def show_figure(fig, *, key: str | None = None, **kwargs):
    """Draw a fairviz Plotly figure with its own template (not Streamlit's theme)."""
    return st.plotly_chart(fig, theme=None, width="stretch", config=PLOTLY_CONFIG, key=key, **kwargs)


def interval_text(metrics: dict, name: str, n: int | None = None) -> str:
    """What a metric's numbers mean, in words (`fairviz.app_support.metric_caption`)."""
    return app_support.metric_caption(metrics, name, n)


def metric_card(label: str, metrics: dict, name: str, *, help: str | None = None, n: int | None = None,
                with_interval: bool = True) -> None:
    """`st.metric` with the value, and (unless ``with_interval=False``) the interval below it."""
    v = app_support.metric_value(metrics, name)
    st.metric(label, "—" if v != v else f"{v:.3f}", help=help, border=True)
    if with_interval:
        st.caption(interval_text(metrics, name, n))


# ---------------------------------------------------------------------------------------------
# background jobs


@st.cache_resource(show_spinner=False)
def job_registry() -> jobs.JobRegistry:
    """One registry for the whole server: every session sees the same jobs; one trains at a time."""
    return jobs.JobRegistry(max_concurrent=1)


def draw_job(snap: jobs.JobSnapshot, *, live: bool) -> None:
    """Progress of a job: bar, epoch, loss terms, validation PCC/SPDD, and a cancel button."""
    reg = job_registry()
    state_icon = {jobs.QUEUED: ":material/hourglass_top:", jobs.RUNNING: ":material/sync:",
                  jobs.DONE: ":material/check_circle:", jobs.FAILED: ":material/error:",
                  jobs.CANCELLED: ":material/stop_circle:"}
    head = f"{state_icon.get(snap.state, '')} **{md(snap.label)}** — {snap.state}"
    if snap.total_runs > 1:
        head += f" · run {min(snap.run_index + 1, snap.total_runs)} of {snap.total_runs}"
    st.markdown(head)
    if snap.state == jobs.QUEUED:
        st.caption("Waiting for the training slot (one job trains at a time on this machine).")
    if snap.stage == "data" and not snap.done and snap.data_total:
        st.progress(min(1.0, (snap.data_done or 0) / snap.data_total),
                    text=f"Preparing data: {snap.data_what or ''} {snap.data_done}/{snap.data_total}")
    else:
        text = f"epoch {snap.epoch or 0} of {snap.epochs or '?'}"
        if snap.step and snap.steps and not snap.done:
            text += f", step {snap.step}/{snap.steps}"
        st.progress(snap.fraction, text=text)
    cols = st.columns(4)
    cols[0].metric("Epoch", f"{snap.epoch or 0} / {snap.epochs or '?'}")
    cols[1].metric("val PCC", "—" if snap.val_pcc is None else f"{snap.val_pcc:.3f}")
    cols[2].metric("val SPDD", "—" if snap.val_spdd is None else f"{snap.val_spdd:.3f}")
    cols[3].metric("Elapsed", f"{snap.elapsed:.0f} s")
    if snap.losses:
        st.caption("Loss terms (last step): " + ", ".join(f"{k} {v:.4f}" for k, v in snap.losses.items()))
    if snap.history:
        show_figure(figures.history_figure(list(snap.history)), key=f"hist-{snap.id}-{'live' if live else 'end'}")
    if live and not snap.done:
        if st.button("Cancel training", key=f"cancel-{snap.id}", icon=":material/stop_circle:"):
            reg.cancel(snap.id)
            st.toast("Cancelling… the job stops at its next step.")
    if snap.state == jobs.FAILED:
        st.error(f"Training failed: {md(snap.error)}", icon=":material/error:")
    elif snap.state == jobs.CANCELLED:
        st.warning("Training was cancelled; nothing was saved." if not snap.results
                   else f"Cancelled; kept the finished runs: {', '.join(snap.run_names)}.")
    elif snap.state == jobs.DONE:
        st.success(f"Saved: {', '.join(code(n) for n in snap.run_names)} in `{models_root()}`.",
                   icon=":material/check_circle:")


def job_status(job_id: str | None):
    """The job's snapshot, or None if there is no such job (e.g. the server restarted)."""
    if not job_id:
        return None
    try:
        return job_registry().status(job_id)
    except ValueError:
        return None


@st.fragment(run_every=1.0)
def live_job(job_id: str) -> None:
    """Redraws the job's progress every second; once the job ends, reruns the page once, which
    then draws the final state without this fragment, so polling stops."""
    snap = job_status(job_id)
    if snap is None:
        st.warning("This job is no longer known to the server (it may have restarted).")
        return
    draw_job(snap, live=True)
    if snap.done:
        st.rerun()


def show_job(state_key: str, on_done: Callable[[jobs.JobSnapshot], None] | None = None) -> jobs.JobSnapshot | None:
    """Draw the job whose id is in ``st.session_state[state_key]``: live while it runs, final
    state after. ``on_done(snapshot)`` runs once when a finished job is first drawn."""
    snap = job_status(st.session_state.get(state_key))
    if snap is None:
        return None
    if not snap.done:
        live_job(snap.id)
        return snap
    handled_key = f"{state_key}__handled"
    if on_done is not None and st.session_state.get(handled_key) != snap.id:
        st.session_state[handled_key] = snap.id
        on_done(snap)  # may rerun the page (e.g. to show the new current run in the sidebar)
    draw_job(snap, live=False)
    return snap


# ---------------------------------------------------------------------------------------------
# audit computations, cached by a key naming the data (run folder + mtime, or upload hash +
# columns). Arguments starting with "_" are not hashed by Streamlit (the key stands for them).


@st.cache_resource(show_spinner="Reading the file…", max_entries=2, ttl=UPLOAD_TTL_S)
def read_table(digest: str, name: str, _data: bytes):
    """The uploaded file as a DataFrame (cached by content hash; do not mutate it)."""
    return app_support.read_uploaded_table(_data, name)


@st.cache_resource(show_spinner=False, max_entries=4, ttl=UPLOAD_TTL_S)
def table_columns(digest: str, _table, score_col: str, group_cols: tuple, label_col: str | None,
                  score_range: tuple | None = None, missing_values: tuple = ()):
    """(scores, {attribute: values}, labels or None) from the chosen columns, checked; with
    ``score_range`` (low, high) the scores are first rescaled from that range into [0, 1]."""
    from fairviz.score_range import rescale_column

    if score_range is not None:
        _table = rescale_column(_table, score_col, *score_range)
    return app_support.audit_columns(_table, score_col, list(group_cols), label_col, missing_values)


@st.cache_resource(show_spinner="Auditing…", max_entries=8, ttl=UPLOAD_TTL_S)
def audit_attributes(data_key: str, _scores, _attributes, _labels, n_boot: int):
    from fairviz.groups import audit_attributes as run_audit

    return run_audit(_scores, _attributes, _labels, n_boot=n_boot, random_state=0,
                     max_groups=MAX_GROUPS, max_cells=app_support.APP_MAX_CELLS)


@st.cache_resource(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def view_audit(data_key: str, view: str, _scores, _attributes, _labels, n_boot: int):
    """`fairviz.metrics.audit` with ``n_boot`` bootstrap resamples on the known rows of ``view``."""
    from fairviz.metrics import audit

    col = _prepared_groups(data_key, len(_scores), _attributes)[view]
    y = None if _labels is None else np.asarray(_labels)[col.known]
    return audit(np.asarray(_scores)[col.known], col.values(known_only=True), y, n_boot=n_boot, random_state=0)


@st.cache_resource(show_spinner=False)
def _permutation_store() -> dict:
    """Permutation tests already run on this server, by data key and view (a few seconds each)."""
    return {}


def permutation_for(data_key: str, view: str, x, g, progress=None):
    """Permutation test of SPDD (shuffled group labels) within a fixed work budget: 1,000
    shuffles for two groups up to about 1.5M rows (`fairviz.permute`), fewer for more groups.
    Run once per data and view; ``progress(done, total)`` is called from this thread (not from
    a cached function, so a progress bar can follow it)."""
    from fairviz.report import auto_n_perm
    from fairviz.significance import permutation_test

    store = _permutation_store()
    key = (data_key, view)
    if key not in store:
        n_groups = len(pd.unique(np.asarray(g)))
        n_perm = auto_n_perm(len(x), n_groups, budget=1.5e8, low=20)
        result = permutation_test(x, g, metric="spdd", n_perm=n_perm, random_state=0, progress=progress)
        while len(store) >= 8:  # the last few only
            store.pop(next(iter(store)))
        store[key] = result
    return store[key]


def metrics_frame(metrics: dict, attribute: str | None = None, note: str | None = None) -> pd.DataFrame:
    """attribute, metric, value, ci_low, ci_high, upper, p_value (the last two for SPDD / SPEO)
    for the four metrics (CSV download); the attribute column names the grouping the numbers are
    for; ``note`` (e.g. that the scores were rescaled) goes in a last column."""
    rows = [{**({} if attribute is None else {"attribute": attribute}), "metric": k,
             "value": app_support.metric_value(metrics, k),
             "ci_low": app_support.metric_value(metrics, k, "ci_low"),
             "ci_high": app_support.metric_value(metrics, k, "ci_high"),
             "upper": app_support.metric_value(metrics, k, "upper"),
             "p_value": app_support.metric_value(metrics, k, "p_value")} for k in app_support.METRIC_NAMES]
    frame = pd.DataFrame(rows).dropna(subset=["value"])
    if note:
        frame["note"] = note
    return frame


@st.cache_resource(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def _prepared_groups(data_key: str, _n: int, _attributes):
    from fairviz.groups import prepare_groups

    return prepare_groups(_attributes, _n, intersections=True)


def view_rows(data_key: str, view: str, scores, attributes):
    """(scores, group values) of the rows whose group is known in ``view``."""
    col = _prepared_groups(data_key, len(scores), attributes)[view]
    return np.asarray(scores)[col.known], col.values(known_only=True)


@st.cache_resource(show_spinner="Computing DP(τ)…", max_entries=8, ttl=UPLOAD_TTL_S)
def dp_curve_for(data_key: str, view: str, _scores, _attributes):
    from fairviz.metrics import dp_curve

    x, g = view_rows(data_key, view, _scores, _attributes)
    return dp_curve(x, g)


@st.cache_resource(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def _dp_base_figure_json(data_key: str, view: str, _curve) -> str:
    return figures.dp_curve_figure(_curve, title=None).to_json()


def dp_base_figure(data_key: str, view: str, curve):
    """A fresh copy of the (cached) DP(τ) figure without a τ marker: cheap to mark per slider move."""
    import plotly.io as pio

    return pio.from_json(_dp_base_figure_json(data_key, view, curve), skip_invalid=True)


@st.cache_data(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def distribution_figure(data_key: str, view: str, _scores, _attributes):
    x, g = view_rows(data_key, view, _scores, _attributes)
    return figures.score_distribution_figure(x, g, title=None)


def rate_tests_display(t: pd.DataFrame, rate_name: str = "selection rate") -> pd.DataFrame:
    """A `fairviz.significance.rate_tests` table as shown: readable group names, the test's
    p-value as text ("reference" for the highest group, "—" where not tested)."""

    def _p(row) -> str:
        if row["reference"]:
            return "reference"
        if row["excluded"] or pd.isna(row["p_value"]):
            return "— (excluded)" if row["excluded"] else "—"
        p = float(row["p_value"])
        text = "< 1e-300" if p == 0 else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")
        return f"{text} ({row['test']})"

    return pd.DataFrame({
        "group": [theme.group_label(g) for g in t["group"]],
        "n": t["n"],
        "share": t["share"],
        rate_name: t["rate"],
        "impact ratio": t["impact_ratio"],
        "p-value vs highest": [_p(r) for _, r in t.iterrows()],
        "under four-fifths (< 0.8)": t["four_fifths_fail"],
        "small group (< 2 %)": t["small_group"],
    })


def rate_table_at(group_counts: dict, rates: dict) -> pd.DataFrame:
    """Selection rate, impact ratio and test per group at one τ, from the curve's rates (no
    pass over the scores: counts = rate × n)."""
    from fairviz.significance import rate_tests

    totals = {g: int(n) for g, n in group_counts.items() if n > 0}
    selected = {g: int(round(float(rates[g]) * totals[g])) for g in totals}
    return rate_tests_display(rate_tests(selected, totals))


@st.cache_resource(show_spinner=False, max_entries=8, ttl=UPLOAD_TTL_S)
def _repair_map(data_key: str, view: str, _scores, _attributes):
    from fairviz.repair import RepairMap

    x, g = view_rows(data_key, view, _scores, _attributes)
    return RepairMap().fit(x, g)


@st.cache_data(show_spinner="Repairing…", max_entries=32, ttl=UPLOAD_TTL_S)
def repair_for(data_key: str, view: str, _scores, _attributes, _labels, theta: float, _before: dict) -> dict:
    """Scores of ``view`` repaired with strength ``theta``: SPDD/PCC/SRCC after (and before, from
    ``_before``, the view's audit dict), the distributions figure (repaired, with the original
    ECDFs dotted) and the map as JSON."""
    from fairviz import metrics

    col = _prepared_groups(data_key, len(_scores), _attributes)[view]
    x, g = np.asarray(_scores)[col.known], col.values(known_only=True)
    rmap = _repair_map(data_key, view, _scores, _attributes)
    xr = np.clip(rmap.transform(x, g, strength=theta), 0.0, 1.0)
    before = lambda k: app_support.metric_value(_before, k)  # noqa: E731
    out = {"spdd0": before("spdd"), "spdd": metrics.spdd(xr, g), "map_json": rmap.to_json()}
    if _labels is not None:
        y = np.asarray(_labels)[col.known]
        out.update(pcc0=before("pcc"), pcc=metrics.pcc(xr, y), srcc0=before("srcc"), srcc=metrics.srcc(xr, y))
    out["figure"] = figures.score_distribution_figure(
        xr, g, reference_scores=x, reference_name="before repair",
        title=f"Scores after repair (θ = {theta:g}); dotted: before",
    )
    after = f"after repair (θ = {theta:g})"
    curves = {"before repair": dp_curve_for(data_key, view, _scores, _attributes), after: metrics.dp_curve(xr, g)}
    out["dp_figure"] = figures.dp_overlay_figure(
        curves, colors={"before repair": theme.NEUTRAL, after: theme.SPDD_LINE},
        title="DP(τ) before and after the repair")
    return out


@st.cache_resource(show_spinner=False)
def _report_store() -> dict:
    """Reports already built on this server, by data key (a report takes seconds to build)."""
    return {}


def report_builder(data_key, scores, attributes, labels, *, source_text: str, file_name: str,
                   source_name: str | None = None, source_bytes: bytes | None = None,
                   tau: float | Callable[[], float] = 0.5, n_boot: int = 200):
    """A callable that builds the self-contained HTML audit report when the download button is
    clicked (`fairviz.report.build_report`, the same as `python -m fairviz report`), or None if
    that module is missing. Built once per data and τ, then served from memory.

    ``tau`` may be a callable, read at the click: the τ slider lives in a fragment whose reruns
    do not redraw this button, so a τ captured when the button was drawn could be stale."""
    try:
        from fairviz.report import build_report
    except ImportError:
        return None
    store = _report_store()

    def _html() -> bytes:
        t = float(tau() if callable(tau) else tau)
        key = (data_key, round(t, 4), int(n_boot))
        if key not in store:
            html = build_report(scores, attributes, labels, source_name=source_name, source_bytes=source_bytes,
                                source=source_text, title=f"fairviz audit: {file_name}", tau=t,
                                n_boot=int(n_boot))
            while len(store) >= 4:  # keep the last few reports only (a few MB each)
                store.pop(next(iter(store)))
            store[key] = html.encode("utf-8")
        return store[key]

    return _html
