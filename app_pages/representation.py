"""Representation: where the groups sit in the model's latent code Z (PCA), method by method."""

import streamlit as st

from app_pages import _common as ui
from fairviz import app_support, figures
from fairviz.app_services.latent import adversary_range, separation_note

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
    lat = ui.latent(name)
    return figures.pca_2d(lat.z), lat.groups, lat.scores, app_support.group_names(lat.info)


@st.cache_data(show_spinner=False, max_entries=64)
def _distance(name: str, mtime_ns: int) -> float:
    # the page's one definition (app_support.REPRESENTATION_DISTANCE): full Z, standardised
    lat = ui.latent(name)
    return figures.centroid_distance(lat.z, lat.groups, standardize=True)


with ui.user_errors(f"Cannot read the latent code of run {focus!r}"):
    proj, groups, scores, group_names = _projection(focus, ui.run_mtime(focus))
    fig = figures.pca_figure(proj.coords, groups, scores=scores, explained=proj.explained,
                             distance=_distance(focus, ui.run_mtime(focus)),
                             distance_label="centroid distance (full Z, standardised)", group_names=group_names,
                             title=f"Z of {focus} ({by_name[focus].method}), test split")
    ui.show_figure(fig, key="fv_rep_pca")
    st.caption(
        "Left: coloured by group, with each group's centroid (×) and the line between them. Right: "
        f"the same points coloured by score (the colour scale spans this run's scores, {scores.min():.2f} "
        f"to {scores.max():.2f}). A fair representation mixes the groups: its centroids sit close "
        "together while the score still varies across the cloud. The distance in the legend is the "
        "same number as in the bar chart below; the plane only illustrates it."
    )

st.subheader("Centroid distance per run")
chosen = st.multiselect("Runs", names, key="fv_rep_runs")
if chosen:
    with ui.user_errors("Cannot read the latent codes"):
        dists = {n: _distance(n, ui.run_mtime(n)) for n in chosen}
        ui.show_figure(
            figures.centroid_distance_figure(dists, methods={n: by_name[n].method for n in chosen}),
            key="fv_rep_dist",
        )
        st.caption(f"Centroid distance: the {app_support.REPRESENTATION_DISTANCE}. "
                   + ", ".join(f"`{n}` {d:.3f}" for n, d in dists.items()))
        note = separation_note(dists, {n: by_name[n].method for n in chosen},
                               lambda n: adversary_range(ui.latent(n).history))
        if note:
            st.info(note)
