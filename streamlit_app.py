"""Router: st.navigation over the page scripts in pages/ (pages that are not there yet are skipped)."""

import os

import streamlit as st

from pages import links, live_chart

st.set_page_config(page_title="Generative models lab", page_icon=":material/science:", layout="wide")

HERE = os.path.dirname(os.path.abspath(__file__))
PAGES = [  # (file, title, icon); the first one that exists is the home page
    ("pages/compare.py", "Compare", ":material/balance:"),
    ("pages/lecture.py", "Lecture", ":material/school:"),
    ("pages/datasets.py", "Datasets", ":material/map:"),
    ("pages/flows.py", "Flows", ":material/waves:"),
    ("pages/autoregressive.py", "Autoregressive", ":material/trending_flat:"),
    ("pages/vae.py", "Autoencoder / VAE", ":material/hub:"),
    ("pages/gan.py", "GAN", ":material/swords:"),
    ("pages/diffusion.py", "Diffusion", ":material/blur_on:"),
    ("pages/flow_matching.py", "Flow matching", ":material/moving:"),
    ("pages/classifiers.py", "Classifiers", ":material/label:"),
    ("pages/inverse.py", "Inverse problems", ":material/sync_alt:"),
    ("pages/scoreboard.py", "Scoreboard", ":material/leaderboard:"),
]

pages = [
    st.Page(
        path, title=title, icon=icon, default=(i == 0), url_path=os.path.splitext(os.path.basename(path))[0]
    )
    for i, (path, title, icon) in enumerate(p for p in PAGES if os.path.exists(os.path.join(HERE, p[0])))
]
page = st.navigation(pages)
with st.sidebar:  # its first element (in the main area it held back the page's title until its code loaded)
    live_chart.preload()  # the browser fetches plotly.js while the page is built
links.lecture_from_link()
top = st.container()  # the lecture-mode switch goes here, drawn after the page so that the page's
try:  # title paints before torch and scikit-learn are imported (first paint)
    page.run()
finally:
    from pages import ui

    with top:
        ui.lecture_toggle()
