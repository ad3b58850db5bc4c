"""fairviz — the Streamlit app. `make run` (or `streamlit run app.py`) opens it.

Only navigation lives here; each page is a short file in `pages/` that gathers input, calls
`fairviz`, and draws.
"""

import streamlit as st

st.set_page_config(page_title="fairviz", page_icon=":material/balance:", layout="wide")

page = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/audit.py", title="Audit", icon=":material/fact_check:"),
        st.Page("pages/monitor.py", title="Monitor", icon=":material/monitor_heart:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/tradeoff.py", title="Trade-off", icon=":material/show_chart:"),
        st.Page("pages/representation.py", title="Representation", icon=":material/scatter_plot:"),
    ]
)
try:
    page.run()
except MemoryError:  # anywhere on a page (a user_errors block catches it where it is expected)
    from pages._common import OUT_OF_MEMORY

    st.error(OUT_OF_MEMORY, icon=":material/error:")
