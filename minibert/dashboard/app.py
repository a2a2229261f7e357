"""The dashboard's entry script: ``streamlit run minibert/dashboard/app.py`` (via ``minibert
dashboard``). It sets up the page, the sidebar (runs folder, presentation switch) and the
navigation; each page is a script in ``pages/``."""

from __future__ import annotations

import streamlit as st

from minibert.dashboard.common import apply_theme, runs_root

st.set_page_config(page_title="minibert dashboard", page_icon=":material/school:", layout="wide")

PAGES = [
    st.Page("pages/runs.py", title="Runs", icon=":material/monitoring:", default=True),
    st.Page("pages/attention.py", title="Attention", icon=":material/visibility:"),
    st.Page("pages/predictions.py", title="Predictions", icon=":material/quiz:"),
    st.Page("pages/finetuning.py", title="Fine-tuning", icon=":material/tune:"),
    st.Page("pages/data.py", title="Data", icon=":material/dataset:"),
]
page = st.navigation(PAGES)

with st.sidebar:
    presentation = st.toggle(
        "Presentation mode",
        key="presentation",
        help="Large text and thick lines for a projector.",
    )
    st.caption(f"Runs folder: `{runs_root()}`")
apply_theme(presentation)

page.run()
