"""Streamlit helpers shared by the pages: user text, errors, the runs and the current run,
widget state, the page header and drawing.

Only Streamlit glue lives here; every computation is a `fairviz` function with its own test.
Background jobs are drawn by `_jobs`, the Audit page's cached computations live in `_audit_data`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

import streamlit as st

from fairviz import app_support
from fairviz.app_services.latent import read_latent
from fairviz.metrics import dp_curve
from fairviz.paths import models_dir
from fairviz.runs import check_run_folder, list_runs, read_predictions
from fairviz.runs import load_run as read_run
from fairviz.safety import isolate_bidi

#: Exceptions that mean "the input is wrong" (fairviz raises these with a message saying what to
#: fix); they become an `st.error`, never a traceback. Parser/Unicode/Arrow errors subclass
#: ValueError.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, MemoryError)
OUT_OF_MEMORY = ("out of memory: this data is too large for the server; sample it, or audit it with the "
                 "command line (`python -m fairviz audit`) on a machine with more memory")

CURRENT_RUN_KEY = "fv_current_run"
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


def _run_path(name: str) -> Path:
    path = models_root() / name
    if not path.is_dir():
        raise FileNotFoundError(f"run {name!r} is not in {models_root()}; pick another run or train one")
    return path


@st.cache_resource(show_spinner="Loading the run…", max_entries=24)
def _load_run(path: str, mtime_ns: int):
    return read_run(path)


def load_run(name: str):
    """The `Run` called ``name`` from the models folder (cached; do not mutate it). Imports
    torch (the network is checked against its weights): for pages that train only."""
    path = _run_path(name)
    return _load_run(str(path), path.stat().st_mtime_ns)


@st.cache_resource(show_spinner="Loading the latent code…", max_entries=24)
def _latent(path: str, mtime_ns: int):
    return read_latent(path)


def latent(name: str):
    """Z, test groups and scores, info and history of run ``name`` without torch
    (`fairviz.app_services.latent.read_latent`; cached, do not mutate)."""
    path = _run_path(name)
    return _latent(str(path), path.stat().st_mtime_ns)


@st.cache_data(show_spinner=False, max_entries=64)
def _predictions(path: str, mtime_ns: int):
    # Only predictions.csv is needed: no torch import, no network rebuilt (seconds on a cold server).
    return read_predictions(check_run_folder(path))


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


def run_mtime(name: str) -> int:
    """Modification time (ns) of run ``name``'s folder: part of every cache key naming a run."""
    return (models_root() / name).stat().st_mtime_ns


@st.cache_resource(show_spinner=False, max_entries=64)
def _run_curve(path: str, mtime_ns: int):
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
# uploads


@st.cache_resource(show_spinner="Reading the file…", max_entries=2, ttl=UPLOAD_TTL_S)
def read_table(digest: str, name: str, _data: bytes):
    """The uploaded file as a DataFrame (cached by content hash; do not mutate it)."""
    return app_support.read_uploaded_table(_data, name)
