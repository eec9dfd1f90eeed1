"""Shared fixtures: small data, a temp dir, and one torch thread (tests run on 2 cores)."""

import os
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
torch.set_num_threads(1)


@pytest.fixture
def moons_points() -> np.ndarray:
    from lab.data import make_dataset

    return make_dataset("moons").sample(512, seed=0)


def charts(at) -> list:
    """A page's plotly figures in AppTest: st.plotly_chart elements and live charts (`ui.live_chart`'s component)."""
    return [*at.get("plotly_chart"), *at.get("bidi_component")]
