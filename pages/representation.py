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
    return proj, preds["group"].to_numpy(), preds["score"].to_numpy(), app_support.group_names(run.info)


@st.cache_data(show_spinner=False, max_entries=64)
def _distance(name: str, mtime_ns: int) -> float:
    # the page's one definition (app_support.REPRESENTATION_DISTANCE): full Z, standardised
    run = ui.load_run(name)
    return figures.centroid_distance(run.z, run.test_predictions()["group"].to_numpy(), standardize=True)


@st.cache_data(show_spinner=False, max_entries=64)
def _adversary_accuracy(name: str, mtime_ns: int) -> tuple[float, float] | None:
    """Lowest and highest per-epoch training accuracy of the run's adversary (None: no adversary)."""
    accs = [h["adv_acc"] for h in ui.load_run(name).history if isinstance(h.get("adv_acc"), (int, float))]
    return (min(accs), max(accs)) if accs else None


def _mtime(name: str) -> int:
    return (ui.models_root() / name).stat().st_mtime_ns


with ui.user_errors(f"Cannot read the latent code of run {focus!r}"):
    proj, groups, scores, group_names = _projection(focus, _mtime(focus))
    fig = figures.pca_figure(proj.coords, groups, scores=scores, explained=proj.explained,
                             distance=_distance(focus, _mtime(focus)),
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
        dists = {n: _distance(n, _mtime(n)) for n in chosen}
        ui.show_figure(
            figures.centroid_distance_figure(dists, methods={n: by_name[n].method for n in chosen}),
            key="fv_rep_dist",
        )
        st.caption(f"Centroid distance: the {app_support.REPRESENTATION_DISTANCE}. "
                   + ", ".join(f"`{n}` {d:.3f}" for n, d in dists.items()))
        method_of = {n: by_name[n].method for n in chosen}
        vanilla = [dists[n] for n in chosen if method_of[n] == "vanilla"]
        ours = [n for n in chosen if method_of[n] == "ours" and vanilla and dists[n] > min(vanilla)]
        if ours:
            swings = [a for a in (_adversary_accuracy(n, _mtime(n)) for n in ours) if a]
            adv = [n for n in chosen if method_of[n] == "adversarial"]
            st.info(
                f"Here `ours` separates the groups more than `vanilla` ({dists[ours[0]]:.3f} vs {min(vanilla):.3f}), "
                "unlike the paper, which reports the smallest distance for its method. The W1 term acts on the "
                "scores, not on Z, so it matches the groups' score distributions while Z may still set the "
                "groups apart; the adversary behind gradient reversal is meant to hide the group in Z, but "
                "it is fooled by moving the group's direction around rather than by removing it"
                + (f" (its training accuracy swings between {swings[0][0]:.2f} and {swings[0][1]:.2f} from epoch "
                   "to epoch instead of settling at chance)" if swings else "")
                + (f"; the adversarial baseline, the same adversary without W1, also gives {dists[adv[0]]:.3f}"
                   if adv else "")
                + ". On the shipped data, W1 alone (adversary weight 0) brings the groups' codes closer than "
                "vanilla's: docs/RESULTS.md measures this."
            )
