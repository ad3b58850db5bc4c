"""Monitor: a stream of decisions judged as it arrives — anytime-valid alarms against peeking."""

from __future__ import annotations

import hashlib

import pandas as pd
import streamlit as st

from app_pages import _common as ui
from fairviz import monitor, monitor_figures

ui.page_header(
    "Monitor",
    "A deployed scorer's decisions, judged as they arrive: SPDD so far with a confidence band that "
    "holds at every moment, and an alarm once the gap is shown to exceed ε — however often you look.",
)

SOURCES = {"example": "a made-up stream (drifts on day 36)", "upload": "upload a time-stamped scores file",
           "state": "open a monitor state file"}
ui.widget_defaults({"fv_mon_source": "example", "fv_mon_eps": 0.05, "fv_mon_alpha": 0.05, "fv_mon_tau": 0.5},
                   options={"fv_mon_source": list(SOURCES)})
source = st.radio("Stream", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="fv_mon_source")


@st.cache_resource(show_spinner="Replaying the stream…", max_entries=4, ttl=ui.UPLOAD_TTL_S)
def _replayed(key: str, _df: pd.DataFrame, score: str, group: str, time: str, eps: float, alpha: float, tau: float):
    return monitor.replay(_df, score, group, time, epsilon=eps, alpha=alpha, taus=(tau,))


def _upload(label: str, types: list[str], key: str):
    up = st.file_uploader(label, type=types, key=key)
    if up is None:
        return None, None, None
    data = up.getvalue()
    return up.name, data, hashlib.sha256(data).hexdigest()


if source == "state":
    name, data, _ = _upload("A state file written by `python -m fairviz monitor` (JSON)", ["json"], "fv_mon_state")
    if name is None:
        st.info("Open a state file to see its history, or pick another stream above.", icon=":material/upload_file:")
        st.stop()
    with ui.user_errors(f"Cannot open {name}"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("not a fairviz monitor state (not UTF-8 text)") from None
        state = monitor.loads(text, name)
    origin = f"state file {ui.code(name)}"
else:
    if source == "example":
        table, key, origin = monitor.example_stream(), "example", "the made-up example stream"
        score_col, group_col, time_col = "score", "group", "day"
    else:
        name, data, digest = _upload("One row per decision: a score in [0, 1], a group and a time (number or date)",
                                     ["csv", "parquet"], "fv_mon_upload")
        if name is None:
            st.info("Upload a CSV or Parquet file with score, group and time columns. Example:",
                    icon=":material/upload_file:")
            st.dataframe(pd.DataFrame({"day": [1, 1, 2, 2], "score": [0.81, 0.42, 0.66, 0.35],
                                       "group": ["F", "M", "M", "F"]}), hide_index=True)
            st.stop()
        with ui.user_errors(f"Cannot read {name}"):
            table = ui.read_table(digest, name, data)
        cols = list(table.columns)
        pick = lambda names, i: next((c for c in cols if str(c).lower() in names), cols[min(i, len(cols) - 1)])  # noqa: E731
        c1, c2, c3 = st.columns(3)
        score_col = c1.selectbox("Score column", cols, index=cols.index(pick({"score", "scores", "pred"}, 0)))
        group_col = c2.selectbox("Group column", cols, index=cols.index(pick({"group", "sex", "gender", "race"}, 1)))
        time_col = c3.selectbox("Time column", cols, index=cols.index(pick({"time", "day", "date", "t", "timestamp"}, 2)))
        key, origin = f"upload:{digest}", f"upload {ui.code(name)}"
    c1, c2, c3 = st.columns(3)
    eps = c1.number_input("ε (tolerated gap)", 0.0, 0.99, step=0.01, key="fv_mon_eps", format="%.3f")
    alpha = c2.number_input("α (chance of any false alarm, ever)", 0.001, 0.5, step=0.01, key="fv_mon_alpha",
                            format="%.3f")
    tau = c3.number_input("τ for the selection-rate gap DP(τ)", 0.0, 0.999, step=0.05, key="fv_mon_tau",
                          format="%.3f")
    with ui.user_errors("Cannot monitor this stream"):
        state = _replayed(key, table, score_col, group_col, time_col, float(eps), float(alpha), float(tau))

cfg = state.config
history = state.history_frame()
gaps = state.gaps()
st.caption(f"{origin}: {state.n:,} decisions in {state.updates} looks; groups "
           + ", ".join(f"{ui.md(g)} ({c:,})" for g, c in state.group_counts.items())
           + f". H0: gap ≤ ε = {cfg.epsilon:g}; confidence sequences at {1 - cfg.alpha:.0%}, valid at every look.")

cols = st.columns(len(gaps))
for col, gap in zip(cols, gaps):
    first = state.alarms.get(gap.name)
    value = "—" if gap.value is None else f"{gap.value:.4f}"
    col.metric(gap.name, value, help=f"{1 - cfg.alpha:.0%} anytime confidence sequence now: "
               f"[{gap.low:.4f}, {gap.high:.4f}]")
    if first:
        col.error(f"Alarm: H0 rejected at look {first['update']} ({first['n']:,} decisions"
                  + (f", time {ui.md(first['time'])}" if first["time"] else "") + ")", icon=":material/notifications:")
    else:
        col.success("No alarm: the gap is not shown to exceed ε", icon=":material/check_circle:")

tabs = st.tabs([g.name for g in gaps])
for tab, gap in zip(tabs, gaps):
    with tab:
        ui.show_figure(monitor_figures.gap_history_figure(history, gap.name, epsilon=cfg.epsilon,
                                                          level=1 - cfg.alpha), key=f"fv_mon_fig_{gap.name}")
        rows = history[history["gap"] == gap.name]
        fixed = rows[rows["fixed_rejects"].astype(bool)]
        if len(fixed):
            st.caption(f"A fixed-sample z-test at level {cfg.alpha:g}, re-run at every look, 'rejects' at "
                       f"{len(fixed)} of {len(rows)} looks, first at {int(fixed['n'].iloc[0]):,} decisions. Each "
                       "look is a new chance for noise to cross ε: with a true gap of exactly ε, such repeated "
                       "tests alarm in about 30 % of streams over 100 looks, the anytime test in none (docs/MONITORING.md).")
        else:
            st.caption("The fixed-sample test repeated at every look never rejects on this stream.")

st.download_button("Download the state file (JSON)", monitor.dumps(state), file_name="monitor-state.json",
                   mime="application/json", help="Continue it with `python -m fairviz monitor monitor-state.json --add …`")
