"""fairviz — the Streamlit app. `make run` (or `streamlit run app.py`) opens it.

Only navigation lives here; each page is a short file in `app_pages/` that gathers input, calls
`fairviz`, and draws. (Not `pages/`: Streamlit treats a folder of that name as a legacy multipage
app, and a server whose first request is a bookmarked page would then run that page alone.)
"""

import streamlit as st

from app_pages._common import OUT_OF_MEMORY

st.set_page_config(page_title="fairviz", page_icon=":material/balance:", layout="wide")

page = st.navigation(
    [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/audit.py", title="Audit", icon=":material/fact_check:"),
        st.Page("app_pages/monitor.py", title="Monitor", icon=":material/monitor_heart:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("app_pages/tradeoff.py", title="Trade-off", icon=":material/show_chart:"),
        st.Page("app_pages/representation.py", title="Representation", icon=":material/scatter_plot:"),
    ]
)
try:
    page.run()
except MemoryError:  # anywhere on a page (a user_errors block catches it where it is expected)
    st.error(OUT_OF_MEMORY, icon=":material/error:")
