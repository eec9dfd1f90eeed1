"""Metrics against hand-made cases and obviously-correct references."""

import numpy as np
import pytest

from lab.data import make_dataset
from lab.metrics import (
    Evaluator,
    energy_distance,
    energy_distance_floor,
    energy_distance_unbiased,
    mode_coverage,
    wasserstein2,
)


def test_energy_distance_floor_is_below_a_shifted_sample():
    ds = make_dataset("moons")
    floor = energy_distance_floor(ds, 1000)
    x = ds.sample(1000, 5)
    assert 0 < floor < 0.01
    assert energy_distance(x, x + [0.3, 0.0]) > 5 * floor
    assert energy_distance(x, x) == 0.0


def test_energy_distance_floor_is_its_expected_value():
    """Two independent samples of one density: E[V-statistic] = 2 E|X - X'| / n exactly (the zero diagonal of
    the within-sample means), so the mean floor over 30 pairs matches it; a clamp or a wrong formula does not."""
    ds = make_dataset("moons")
    n = 400
    floors = [energy_distance(ds.sample(n, 2 * i), ds.sample(n, 2 * i + 1)) for i in range(30)]
    x = ds.sample(2000, 999)
    mean_dist = np.mean(np.linalg.norm(x[:1000] - x[1000:], axis=1))  # E|X - X'| from independent pairs
    expected = 2 * mean_dist / n
    assert abs(np.mean(floors) - expected) < 4 * np.std(floors) / np.sqrt(len(floors)) + 0.03 * expected
    assert min(floors) > 0


def test_energy_distance_reference():
    """Against a plain double loop."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2)) + 1
    d = lambda a, b: np.mean([[np.linalg.norm(p - q) for q in b] for p in a])
    assert np.isclose(energy_distance(x, y), 2 * d(x, y) - d(x, x) - d(y, y))


def test_unbiased_energy_distance_reference_and_no_floor():
    """U-statistic against a double loop that skips i == j; over many pairs of samples of one density its
    mean is ~0 while the V-statistic's mean sits at its 1/n floor; a real shift is still seen."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2)) + 1
    d = lambda a, b: np.mean([[np.linalg.norm(p - q) for q in b] for p in a])
    du = lambda a: np.mean(
        [np.linalg.norm(a[i] - a[j]) for i in range(len(a)) for j in range(len(a)) if i != j]
    )
    assert np.isclose(energy_distance_unbiased(x, y), 2 * d(x, y) - du(x) - du(y))
    ds = make_dataset("moons")
    v = [energy_distance(ds.sample(300, 2 * i), ds.sample(300, 2 * i + 1)) for i in range(40)]
    u = [energy_distance_unbiased(ds.sample(300, 2 * i), ds.sample(300, 2 * i + 1)) for i in range(40)]
    se = np.std(u) / np.sqrt(len(u))
    assert abs(np.mean(u)) < 3 * se < np.mean(v)
    x = ds.sample(300, 99)
    assert energy_distance_unbiased(x, x + [0.3, 0.0]) > 10 * np.std(u)


def test_wasserstein2_on_a_shift_and_a_permutation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2))
    assert np.isclose(wasserstein2(x, x + [3.0, 4.0]), 5.0)  # translation: every point moves by 5
    assert np.isclose(wasserstein2(x, x[rng.permutation(200)]), 0.0)
    with pytest.raises(ValueError):
        wasserstein2(x, x[:10])


def test_mode_coverage_hand_made():
    modes = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    s = np.array([[0.0, 0.05], [0.1, 0.0], [10.0, 0.2], [5.0, 5.0], [0.0, 9.0]])
    mc = mode_coverage(s, modes, std=0.1)
    # within 3 std = 0.3: samples 0, 1 (mode 0) and 2 (mode 1); (5,5) and (0,9) are off-mode
    assert mc.modes == 2 and mc.n_modes == 3
    assert np.isclose(mc.high_quality, 3 / 5)
    assert mc.counts.tolist() == [2, 1, 0]


def test_evaluator_scores_the_truth_near_zero():
    """A 'model' that is the true density: KL ~ 0, blur gap ~ 0, all modes."""
    import torch

    ds = make_dataset("8gaussians")

    class Truth:
        has_log_prob = True

        def sample(self, n, gen):
            seed = int(torch.randint(0, 10**6, (1,), generator=gen))
            return torch.as_tensor(ds.sample(n, seed))

        def log_prob(self, x):
            return torch.as_tensor(ds.log_prob(np.asarray(x)))

    m = Evaluator(ds, n=1000)(Truth(), timing=False)
    assert abs(m["kl_to_truth"]) < 1e-9  # same points: exactly log p - log p
    assert abs(m["blur_gap"]) < 0.2
    assert m["modes"] == 8 and m["high_quality"] > 0.98
    assert m["energy_distance"] < 5 * m["energy_distance_floor"] + 1e-3
