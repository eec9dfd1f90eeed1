"""The live chart component (pages/live_chart.js) and its plotly.js, with no heavy imports: the router mounts
it before any page runs, so a newcomer's browser starts on plotly.js (1.5 MB) and on the component's code
while the page is still being built. Plotly.js comes from plotly.py's copy, served as the app's static file
(server.enableStaticServing in .streamlit/config.toml)."""

from __future__ import annotations

import os
import shutil

import streamlit as st

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STATIC_PLOTLY = os.path.join(_ROOT, "static", "plotly.min.js")
_LIVE_CHART_JS = os.path.join(_ROOT, "pages", "live_chart.js")
# bytes reach the component as they are: a str would first go through streamlit's check for dataframes, whose
# first call imports pandas and pyarrow (0.6 s of a cold server's first paint, before the page's title)
PRELOAD = b'{"preload":true}'


@st.cache_resource(show_spinner=False)
def live_chart_component():
    """The component, or None when plotly.js cannot be served (static serving off, or no copy)."""
    if not st.get_option("server.enableStaticServing"):
        return None
    try:
        import plotly

        source = os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js")
        if not os.path.exists(_STATIC_PLOTLY) or os.path.getsize(_STATIC_PLOTLY) != os.path.getsize(source):
            os.makedirs(os.path.dirname(_STATIC_PLOTLY), exist_ok=True)
            shutil.copyfile(source, _STATIC_PLOTLY)
        with open(_LIVE_CHART_JS, encoding="utf-8") as f:
            js = f.read()
    except OSError:
        return None
    return st.components.v2.component("lab_live_chart", js=js, isolate_styles=False)


def preload() -> None:
    """An invisible chart that only starts loading plotly.js: the first element of every page, so the
    browser fetches the component's code before the sidebar's widgets' and plotly.js before the panels ask."""
    component = live_chart_component()
    if component is not None:
        component(data=PRELOAD, key="lab.preload")
