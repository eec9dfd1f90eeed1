"""Each family learns: a few hundred steps (not seconds) make it measurably better than at step 0.

Energy distance to fresh true samples for the samplers (DDPM, score, AE), held-out NLL for the KDE
(its step 0 is Silverman's rule; the steps are the cross-validation that replaces it)."""

import pytest

from lab.data import make_dataset
from lab.metrics import Evaluator
from lab.run import Run, RunSpec


def _before_and_after(key: str, steps: int, metric: str) -> tuple[float, float, float]:
    ds = make_dataset("moons")
    run = Run(RunSpec(key, ds, seed=0, n_train=2000, max_steps=steps, early_stopping=False))
    ev = Evaluator(ds, n=1000, seed=0)
    before = ev(run.model, timing=False)[metric]
    run.status = "running"
    while not run.finished:
        run.advance(50)
    assert run.status == "done", run.message
    return before, ev(run.model, timing=False)[metric], ev.floor


@pytest.mark.parametrize(("key", "steps"), [("ddpm", 400), ("score", 400), ("ae", 400)])
def test_samplers_get_closer_to_the_data(key, steps):
    before, after, floor = _before_and_after(key, steps, "energy_distance")
    assert after < 0.5 * before and after < 0.1, (before, after, floor)


def test_kde_cross_validation_beats_silvermans_rule():
    before, after, _ = _before_and_after("kde", 100, "test_nll")  # converges after its 20 candidates
    assert after < before - 0.05, (before, after)
