"""Compare: several runs side by side — the paper's table, overlaid DP(τ), distributions."""

import pandas as pd
import streamlit as st

from app_pages import _common as ui
from fairviz import app_support, figures, pipelines
from fairviz.app_services.compare import compare_table

ui.page_header("Compare", "Several runs side by side: accuracy (PCC, SRCC) against unfairness (SPDD, SPEO).")

infos = ui.runs()
if not infos:
    ui.no_runs_message()
    st.stop()

table = app_support.runs_frame(infos)
names = table["name"].tolist()
default = app_support.default_compare_names(infos, alpha=4.0) or names[:6]
ui.widget_defaults({"fv_compare_runs": default}, options={"fv_compare_runs": names})
chosen = st.multiselect("Runs to compare", names, key="fv_compare_runs",
                        help="Default: one run per method at α = 4 (rater bias, seed 0).")
if not chosen:
    st.info("Pick at least one run above.")
    st.stop()


@st.cache_data(show_spinner="Repairing…", max_entries=16)
def _repaired(rows: pd.DataFrame, theta: float, signature: tuple):
    return pipelines.repaired_rows(rows, {n: ui.predictions(n) for n in rows["name"]}, theta)


ui.widget_defaults({"fv_compare_repair": True, "fv_compare_theta": 1.0})
r1, r2 = st.columns([1, 2])
with_repair = r1.toggle("Add each run + repair", key="fv_compare_repair",
                        help="Post-processing as a method of its own: each run's test scores moved towards the "
                             "Wasserstein barycenter of the groups, by a map fitted on the run's validation split only.")
theta = r2.slider("Repair strength θ (0 = as trained, 1 = fully repaired)", 0.0, 1.0, step=0.05,
                  key="fv_compare_theta", disabled=not with_repair)

sub = table.set_index("name").loc[chosen]
if with_repair:
    with ui.user_errors("Cannot repair the runs"):
        extra, skipped = _repaired(table[table["name"].isin(chosen)], float(theta),
                                   tuple((n, ui.run_mtime(n)) for n in chosen))
        for name, reason in skipped:
            st.warning(f"`{name}` has no repaired row: {reason}")
        sub = pd.concat([sub, extra.set_index("name")])
table_view = compare_table(sub)
st.dataframe(table_view.shown.style.apply(table_view.styles, axis=0), width="stretch")
st.caption(
    "Value and 95 % interval on each run's test split (SPDD / SPEO: lower end 0 unless a permutation "
    "test tells the groups apart); the best value per column is highlighted, and runs whose interval "
    "overlaps the best one's are shaded lightly: the test data cannot separate them. Rows '… + repair': "
    "the run's test scores after the barycenter repair fitted on its validation split (values only). "
    "SPDD floor: SPDD of the same scores with the group labels shuffled — the smallest gap this test "
    "split can show. Score spread: the std of the test scores; a small SPDD with a near-zero spread "
    "means collapsed scores, not fair ones. Best: " + table_view.best_caption()
)

with ui.user_errors("Cannot read the runs' predictions"):
    curves = {n: ui.run_curve(n) for n in chosen}
    methods = {n: sub.loc[n, "method"] for n in chosen}
    ui.show_figure(figures.dp_overlay_figure(curves, methods=methods, title="DP(τ) of each run"), key="fv_cmp_dp")
    samples = {}
    for n in chosen:
        p = ui.test_predictions(n)
        samples[n] = (p["score"].to_numpy(), p["group"].to_numpy())
    ui.show_figure(figures.distribution_grid_figure(samples), key="fv_cmp_dist")
