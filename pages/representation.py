"""Representation: where the groups sit in the model's latent code Z (PCA), method by method."""

import streamlit as st

from fairviz import app_support, figures
from pages import _common as ui

ui.page_header("Representation", "The fused code Z of the test candidates, projected on its first two principal components.")

infos = ui.runs()
if not infos:
    ui.no_runs_message()
    st.stop()

names = [i.name for i in infos]
by_name = ui.run_infos_by_name()
current = ui.current_run_name()
ui.widget_defaults({"fv_rep_focus": current if current in names else names[0],
                    "fv_rep_runs": app_support.default_compare_names(infos, alpha=4.0) or names[:6]},
                   options={"fv_rep_focus": names, "fv_rep_runs": names})
focus = st.selectbox("Run to project", names, key="fv_rep_focus")


@st.cache_resource(show_spinner="Projecting Z…", max_entries=32)
def _projection(name: str, mtime_ns: int):
    run = ui.load_run(name)
    preds = run.test_predictions()
    proj = figures.pca_2d(run.z)
    return proj, preds["group"].to_numpy(), preds["score"].to_numpy()


@st.cache_data(show_spinner=False, max_entries=64)
def _distance(name: str, mtime_ns: int) -> float:
    run = ui.load_run(name)
    return figures.centroid_distance(run.z, run.test_predictions()["group"].to_numpy(), standardize=True)


def _mtime(name: str) -> int:
    return (ui.models_root() / name).stat().st_mtime_ns


with ui.user_errors(f"Cannot read the latent code of run {focus!r}"):
    proj, groups, scores = _projection(focus, _mtime(focus))
    fig = figures.pca_figure(proj.coords, groups, scores=scores, explained=proj.explained,
                             title=f"Z of {focus} ({by_name[focus].method}), test split")
    ui.show_figure(fig, key="fv_rep_pca")
    st.caption(
        "Left: coloured by group, with each group's centroid (×) and the line between them. Right: "
        "the same points coloured by score. A fair representation mixes the groups: its centroids "
        "sit close together while the score still varies across the cloud."
    )

st.subheader("Centroid distance per run")
chosen = st.multiselect("Runs", names, key="fv_rep_runs")
if chosen:
    with ui.user_errors("Cannot read the latent codes"):
        dists = {n: _distance(n, _mtime(n)) for n in chosen}
        ui.show_figure(
            figures.centroid_distance_figure(dists, methods={n: by_name[n].method for n in chosen}),
            key="fv_rep_dist",
        )
        st.caption(
            "Euclidean distance between the two group centroids in the full Z, divided by the "
            "root-mean-square spread of Z (so runs whose codes differ in scale compare): "
            + ", ".join(f"`{n}` {d:.3f}" for n, d in dists.items())
        )
