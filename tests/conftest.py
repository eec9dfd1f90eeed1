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


@pytest.fixture(autouse=True)
def _free_the_pool_after_each_test():
    """Pages under AppTest open sessions on the process-wide worker pool; a test leaves none training."""
    yield
    from lab.live import pool

    if pool._POOL is not None:
        for sid in list(pool._POOL.sessions):
            pool._POOL.close_session(sid)


def built(runner, run_id: str) -> bool:
    """The run is built in its worker (its first picture came)."""
    s = runner.snapshot(run_id)
    return s is not None and s.status != "building"


def info(runner, run_id: str) -> dict:
    """What the run's worker says of its model (family, config, ...)."""
    return runner.call(run_id, "info")


def charts(at) -> list:
    """A page's plotly figures in AppTest: st.plotly_chart elements and live charts (`ui.live_chart`'s component)."""
    return [*at.get("plotly_chart"), *at.get("bidi_component")]
