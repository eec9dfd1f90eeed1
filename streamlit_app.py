"""Router: st.navigation over the page scripts in pages/ (pages that are not there yet are skipped)."""

import os

import streamlit as st

st.set_page_config(page_title="Generative models lab", page_icon="🧪", layout="wide")

HERE = os.path.dirname(os.path.abspath(__file__))
PAGES = [  # (file, title, icon); the first one that exists is the home page
    ("pages/compare.py", "Compare", "⚖️"),
    ("pages/datasets.py", "Datasets", "🗺️"),
    ("pages/flows.py", "Flows", "🌊"),
    ("pages/autoregressive.py", "Autoregressive", "➡️"),
    ("pages/vae.py", "Autoencoder / VAE", "🧬"),
    ("pages/gan.py", "GAN", "⚔️"),
    ("pages/diffusion.py", "Diffusion", "🌫️"),
    ("pages/classifiers.py", "Classifiers", "🏷️"),
    ("pages/inverse.py", "Inverse problems", "🔁"),
    ("pages/scoreboard.py", "Scoreboard", "📊"),
]

pages = [
    st.Page(path, title=title, icon=icon, default=(i == 0), url_path=os.path.splitext(os.path.basename(path))[0])
    for i, (path, title, icon) in enumerate(p for p in PAGES if os.path.exists(os.path.join(HERE, p[0])))
]
st.navigation(pages).run()
