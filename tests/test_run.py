"""One run under a budget: step budgets, divergence, early stopping that restores, bounded history."""

from lab.data import make_dataset
from lab.run import History, RunSpec, fit
from tests.toy_family import ToyConfig


def spec(**kw) -> RunSpec:
    config = kw.pop("config", ToyConfig(lr=0.01))
    return RunSpec(**{"key": "toy", "dataset": make_dataset("moons"), "n_train": 500, "config": config, **kw})


def test_fit_respects_a_step_budget():
    run = fit(spec(max_steps=37))
    assert run.step == 37 and run.status == "done"


def test_divergence_stops_with_a_sentence():
    run = fit(spec(max_steps=100, config=ToyConfig(blow_up_at=12)))
    assert run.status == "diverged" and run.step == 12
    assert run.message == "diverged at step 12: loss was nan"


def test_early_stopping_restores_the_best_validated_weights():
    """The toy learns the data's mean, then is pulled away from it (drift_at): the validation NLL is best
    before the drift, and the run must end on those weights, not the last ones."""
    run = fit(spec(max_steps=300, config=ToyConfig(lr=0.05, drift_at=150, step_delay=0.003)))
    assert len(run.metrics) >= 2  # validation happened more than once
    assert run.best_step <= 150 < run.step
    assert run.message.startswith(f"restored the weights of step {run.best_step}")
    val = float(-run.model.log_prob(run.val_x).double().mean())
    assert abs(val - run.best_val) < 1e-4  # the model now holds the best weights
    drifted = fit(
        spec(max_steps=300, early_stopping=False, config=ToyConfig(lr=0.05, drift_at=150, step_delay=0.003))
    )
    assert (
        float(-drifted.model.log_prob(drifted.val_x).double().mean()) > val + 1.0
    )  # the last weights were worse


def test_history_is_bounded_but_spans_the_run():
    h = History(maxlen=100)
    for i in range(100_000):
        h.add(i, {"loss": float(i)})
    assert len(h) <= 100
    steps, vals = h.arrays()["loss"]
    assert steps[0] == 0 and steps[-1] > 90_000
