"""Background training jobs in the app: one registry per server, and a job's progress drawn live
(Streamlit glue; the jobs themselves are `fairviz.jobs`)."""

from __future__ import annotations

from typing import Callable

import streamlit as st

from app_pages._common import code, md, models_root, show_figure
from fairviz import figures, jobs


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

