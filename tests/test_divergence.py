"""Divergence that stays finite: a loss that leaves its scale or samples far from the data stop the run
with a sentence, while healthy runs of every family at their defaults (GAN games oscillate) go on."""

import re

import numpy as np
import pytest
import torch

from lab.base import model_keys
from lab.data import make_dataset
from lab.run import BlowUpWatch, Run, RunSpec, fit


def _feed(watch: BlowUpWatch, values) -> str | None:
    for step, v in enumerate(values, 1):
        why = watch.losses(step, {"loss": float(v)})
        if why is not None:
            return why
    return None


def test_a_loss_that_stays_far_above_its_lowest_value_is_divergence():
    rng = np.random.default_rng(0)
    healthy = 2.0 * np.exp(-np.arange(500) / 100) + 0.3 * rng.standard_normal(500)  # falls, crosses zero
    assert _feed(BlowUpWatch(), healthy) is None
    gan = 1.0 + 0.8 * np.sin(np.arange(2000) / 7) + 5 * (rng.random(2000) < 0.01)  # oscillates, spikes
    assert _feed(BlowUpWatch(), gan) is None
    spike = np.r_[np.full(50, 1.2), np.full(19, 3e9), np.full(50, 1.1)]  # 19 steps up, then back
    assert _feed(BlowUpWatch(), spike) is None
    blown = np.r_[np.full(50, 1.2), np.geomspace(10, 3e9, 100)]
    why = _feed(BlowUpWatch(), blown)
    assert why is not None and re.fullmatch(r"diverged at step \d+: loss rose from 1.2 to [0-9.e+]+", why), (
        why
    )
    assert int(why.split()[3].rstrip(":")) > 50 + 20  # not before the loss has stayed far for 20 steps


class _FarModel:
    """Samples at `r` standard deviations (in the model's standardised coordinates)."""

    def __init__(self, r: float):
        self.r = r

    def sample(self, n, generator):
        return torch.full((n, 2), self.r)

    def to_z(self, x):
        return x


def test_samples_far_from_the_data_at_two_checks_in_a_row_are_divergence():
    watch = BlowUpWatch()
    assert watch.samples(10, _FarModel(3.0), 2.0) is None
    assert watch.samples(20, _FarModel(500.0), 2.0) is None  # one bad check is forgiven
    why = watch.samples(30, _FarModel(500.0), 2.0)
    assert why is not None and why.startswith("diverged at step 30: a tenth of the samples lie 707"), why
    watch = BlowUpWatch()
    assert watch.samples(10, _FarModel(500.0), 2.0) is None
    assert watch.samples(20, _FarModel(3.0), 2.0) is None  # back near the data: the count starts again
    assert watch.samples(30, _FarModel(500.0), 2.0) is None
    why = BlowUpWatch().samples(10, _FarModel(1e5), 2.0)  # no model is ever that far but a blown-up one
    assert why is not None and why.startswith("diverged at step 10: a tenth of the samples lie 1.41e+05"), why
    watch = BlowUpWatch()
    watch.samples(10, _FarModel(float("nan")), 2.0)
    assert "not finite" in watch.samples(20, _FarModel(float("nan")), 2.0)


def test_a_vae_at_learning_rate_one_is_stopped_with_a_sentence():
    run = fit(RunSpec("vae", make_dataset("moons"), {"lr": 1.0}, seed=0, n_train=2000, max_steps=300))
    assert run.status == "diverged" and run.step < 100, (run.step, run.message)
    assert re.match(
        r"diverged at step \d+: (loss|recon|neg_elbo|kl) rose from|diverged at step \d+: .*samples",
        run.message,
    ), run.message


def test_a_score_model_at_learning_rate_one_is_stopped_although_its_loss_comes_back():
    # its loss returns to ~0.95 once the network has died, so only the samples tell
    run = fit(RunSpec("score", make_dataset("moons"), {"lr": 1.0}, seed=0, n_train=2000, max_steps=300))
    assert run.status == "diverged", (run.step, run.message)
    # the samples' rule stops it: far out or, on some CPUs' float paths, already overflowed to inf / nan
    assert re.match(
        r"diverged at step \d+: (a tenth of the samples lie [0-9.e+]+ standard dev|more than a tenth of the "
        r"samples are not finite numbers)",
        run.message,
    ), run.message


def test_a_flow_whose_held_out_nll_stays_far_above_a_gaussians_is_stopped():
    # at lr = 1 its loss settles at 16-41 nats (no explosion to trip the loss rule) and early stopping would
    # restore the "best" of those weights as if the run were fine
    run = fit(RunSpec("flow", make_dataset("moons"), {"lr": 1.0}, seed=0, n_train=2000, max_steps=200))
    assert run.status == "diverged", (run.step, run.message)
    m = re.fullmatch(
        r"diverged at step \d+: its held-out NLL \(([0-9.e+]+)\) is ([0-9.e+]+) nats worse than a Gaussian "
        r"with the data's mean and spread \(([-0-9.e+]+)\)",
        run.message,
    )
    assert m and float(m[2]) > Run.FAR_ABOVE_YARDSTICK, run.message
    # the yardstick is the held-out NLL of N(mean, diag(std^2)) of the training split, in data units
    x = run.val_x
    mean, std = run.train_x.mean(0), run.train_x.std(0)
    z = (x - mean) / std
    expect = float((0.5 * (z**2).sum(1)).mean() + np.log(2 * np.pi) + np.log(std).sum())
    assert abs(run._yardstick - expect) < 1e-6, (run._yardstick, expect)


@pytest.mark.parametrize("key", [k for k in model_keys() if k != "toy"])
def test_defaults_of_every_family_do_not_trip_it(key):
    run = fit(
        RunSpec(key, make_dataset("moons"), None, seed=0, n_train=2000, max_steps=300, early_stopping=False)
    )
    assert run.status == "done", run.message
