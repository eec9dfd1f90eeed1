"""Every family page can record its live panels (ui.record_expander), not only Compare."""

import os

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import built
from tests.test_pages import ROOT, wait_for

PAGES = {  # page -> (recording prefix, the run the page trains)
    "pages/flows.py": ("flows", "flows/flow"),
    "pages/flow_matching.py": ("fm", "fm/fm"),
    "pages/autoregressive.py": ("autoregressive", "autoregressive/ar"),
    "pages/diffusion.py": ("diffusion", "diffusion/ddpm"),
    "pages/gan.py": ("gan", "gan/seed0"),
    "pages/vae.py": ("vae", "vae/vae"),
    "pages/datasets.py": ("datasets", "datasets/gmm"),
    "pages/classifiers.py": ("classifiers", "classifiers/class0"),
    "pages/inverse.py": ("inverse", "inverse/ar"),
}


@pytest.mark.parametrize("page", list(PAGES))
def test_a_family_page_records_its_run(page):
    prefix, rid = PAGES[page]
    at = AppTest.from_file(os.path.join(ROOT, page), default_timeout=180).run()
    runner = at.session_state["runner"]
    try:
        assert wait_for(lambda: built(runner, rid), timeout=120)
        at.toggle(key=f"{prefix}.record").set_value(True).run()
        assert not at.exception, [e.value for e in at.exception]
        assert runner.recording(rid) is not None  # the page process keeps its pictures from now on
        at.button(key=f"{prefix}.play").click().run()
        # the classifiers' default family (a GMM per class) converges at once: its one still picture is a frame
        frames = 1 if page == "pages/classifiers.py" else 2
        assert wait_for(lambda: len(runner.recording(rid).frames) >= frames, timeout=120)
        at.run()
        assert any("frames" in c.value for c in at.caption)
    finally:
        runner.close()
