"""Inverse problems: the grid conditional against closed-form Gaussian conditionals, latent inversion
against its closed-form optimum, rejection against the noisy-observation posterior, and every family's answer."""

import math

import numpy as np
import pytest
import torch

from lab.base import REGISTRY, GenerativeModel
from lab.data import make_dataset
from lab.inverse import (
    Answer,
    InverseConfig,
    grid_conditional,
    ill_posedness,
    latent_inversion,
    manifold_level,
    methods_for,
    rejection,
    sample_grid,
    score,
    solutions,
    solve,
    true_conditional,
)

RHO = 0.8
L = torch.tensor([[1.0, 0.0], [RHO, math.sqrt(1 - RHO**2)]])  # x = L z, z ~ N(0, I): corr(x1, x2) = RHO


class Gauss(GenerativeModel):
    """A test family: the correlated Gaussian x = L z with exact log_prob and a linear decoder."""

    key, title, has_log_prob, density_kind = "gauss", "Gaussian", True, "exact"
    latent_dim = 2

    def _build(self):
        pass

    def decode(self, z):
        return z @ L.T

    def prior_sample_latent(self, n, generator):
        return torch.randn(n, 2, generator=generator)

    def _sample_z(self, n, generator):
        return self.decode(self.prior_sample_latent(n, generator))

    def _log_prob_z(self, z):
        cov = L @ L.T
        return torch.distributions.MultivariateNormal(torch.zeros(2), cov).log_prob(z)


@pytest.fixture(scope="module")
def gauss():
    return Gauss(None, np.array([[-1.0, -1.0], [1.0, 1.0]]))  # this data standardises to the identity


def _normal(g, mu, var):
    return np.exp(-0.5 * (g - mu) ** 2 / var) / np.sqrt(2 * math.pi * var)


def test_grid_conditional_is_the_gaussian_conditional(gauss):
    c = 0.7
    cond = grid_conditional(lambda p: gauss.log_prob(p).double().numpy(), 0, c, -5, 5, 800)
    assert abs(cond["p"].sum() * (cond["g"][1] - cond["g"][0]) - 1) < 1e-9
    assert np.abs(cond["p"] - _normal(cond["g"], RHO * c, 1 - RHO**2)).max() < 1e-3
    # conditioning on x2 instead: symmetric
    cond2 = grid_conditional(lambda p: gauss.log_prob(p).double().numpy(), 1, c, -5, 5, 800)
    assert np.abs(cond2["p"] - _normal(cond2["g"], RHO * c, 1 - RHO**2)).max() < 1e-3


def test_noisy_observation_posterior(gauss):
    """y = x1 + N(0, s^2): x2 | y ~ N(rho y / (1 + s^2), 1 - rho^2 / (1 + s^2))."""
    y, s = 1.0, 0.5
    cond = grid_conditional(lambda p: gauss.log_prob(p).double().numpy(), 0, y, -5, 5, 600, sigma=s)
    mu, var = RHO * y / (1 + s**2), 1 - RHO**2 / (1 + s**2)
    assert np.abs(cond["p"] - _normal(cond["g"], mu, var)).max() < 2e-3
    # rejection sampling with a Gaussian kernel of width s is the same posterior, in samples
    x, info = rejection(gauss, 0, y, 4000, torch.Generator().manual_seed(0), sigma=s)
    assert abs(x[:, 1].mean() - mu) < 0.05 and abs(x[:, 1].var() - var) < 0.05
    assert 0 < info["acceptance"] < 1


def test_latent_inversion_finds_the_map(gauss):
    """min_z (z1 - c)^2 / (2 s^2) + |z|^2 / 2 has z* = (c / (1 + s^2), 0), so x2* = rho c / (1 + s^2)."""
    c = 1.2
    x, info = latent_inversion(gauss, 0, c, 64, torch.Generator().manual_seed(1))
    s = 0.05
    assert np.abs(x[:, 1] - RHO * c / (1 + s**2)).max() < 0.03
    assert info["residual"] < 0.03


def test_sample_grid_moments():
    g = np.linspace(-6, 6, 1201)
    cond = {"g": g, "p": _normal(g, 0.5, 0.25)}
    s = sample_grid(cond, 20000, seed=0)
    assert abs(s.mean() - 0.5) < 0.02 and abs(s.std() - 0.5) < 0.02


def test_moons_slice_is_ill_posed():
    ds = make_dataset("moons")
    t = true_conditional(ds, 0, 0.5)
    sol = solutions(t)
    # upper arc: (cos t, sin t) with cos t = 0.5; lower arc: (1 - cos t, 0.5 - sin t) with cos t = 0.5
    assert len(sol) == 2
    assert abs(sol[0]["at"] - (0.5 - math.sqrt(3) / 2)) < 0.03 and abs(sol[1]["at"] - math.sqrt(3) / 2) < 0.03
    assert all(abs(s["mass"] - 0.5) < 0.02 for s in sol)
    assert "2 separate values" in ill_posedness(t, 0, 0.5)
    one = true_conditional(make_dataset("8gaussians"), 0, 2.0)
    assert len(solutions(one)) == 1 and "well posed" in ill_posedness(one, 0, 2.0)


def test_solve_and_score_with_an_exact_density(gauss):
    c = 0.3
    g = np.linspace(-5, 5, 600)
    truth = {"g": g, "p": _normal(g, RHO * c, 1 - RHO**2)}
    assert methods_for(gauss) == ["grid", "latent", "rejection"]
    a = solve(gauss, 0, c, truth, "grid", n=1500)
    sc = score(a, truth, 0, c)
    assert not a.error and sc["kl"] < 1e-3 and sc["energy_distance"] < 5 * sc["energy_distance_floor"] + 1e-3
    # a wrong answer scores worse on both numbers
    bad = {"g": g, "p": _normal(g, -1.0, 0.1)}
    sb = score(a, bad, 0, c)
    assert sb["kl"] > 1 and sb["energy_distance"] > 10 * sc["energy_distance"]


@pytest.mark.parametrize("key", [k for k in REGISTRY if k not in ("gmm", "kde")])
def test_every_family_answers(key):
    """Every registered family answers with its best method: finite points on (or near) the line, closer to
    the true conditional than to a wrong one 4 units above the moons. A family that fails to import fails here."""
    from lab.run import RunSpec, fit

    ds = make_dataset("moons")
    model = fit(RunSpec(key, ds, seed=0, n_train=2000, max_steps=30)).model
    truth = true_conditional(ds, 0, 0.5, n=300)
    a = solve(model, 0, 0.5, truth, n=200, seed=0)
    assert not a.error, a.error
    assert len(a.points) > 0 and np.isfinite(a.points).all()
    if a.method in ("autoregressive", "inpaint", "grid"):
        assert np.allclose(a.points[:, 0], 0.5, atol=1e-4)
    sc = score(a, truth, 0, 0.5)
    wrong = {"g": truth["g"] + 4.0, "p": truth["p"]}  # the same shape, moved up by 4
    assert sc["energy_distance"] < score(a, wrong, 0, 0.5)["energy_distance"] / 3, sc


def test_inverse_page_runs():
    import os

    from streamlit.testing.v1 import AppTest

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    at = AppTest.from_file(os.path.join(root, "pages", "inverse.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("2 separate values" in i.value for i in at.info)  # moons at x1 = 0.5 by default
    import time

    at.multiselect(key="inverse.families").set_value(["kde"]).run()
    from tests.conftest import built

    runner = at.session_state["runner"]
    t0 = time.time()
    while not built(runner, "inverse/kde") and time.time() - t0 < 30:  # runs are built in the background
        time.sleep(0.1)
    at.button(key="inverse.step").click().run()  # one step: KDE scores one bandwidth, then answers
    while (runner.busy or runner.snapshot("inverse/kde").step == 0) and time.time() - t0 < 30:
        time.sleep(0.1)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    df = at.dataframe[0].value
    assert set(df["method"]) == {"grid"}
    # KDE's grid answer lies on the moons' two branches: an answer 4 units off scores ~6.5, a blurred one ~0.5
    assert ((df["energy distance"] > 0) & (df["energy distance"] < 0.1)).all(), df


@pytest.mark.parametrize("lam", [0.1, 1.0, 10.0, 1000.0])
def test_prior_weight_closed_form(gauss, lam):
    """min_z (z1 - c)^2 / (2 s^2) + λ |z|^2 / 2 has z* = (c / (1 + λ s^2), 0): x1* = c / (1 + λ s^2),
    x2* = rho x1*. λ = 1 is the MAP of the test above; a larger λ pulls z* (and x*) toward 0."""
    c, s = 1.2, 0.05
    x, info = latent_inversion(gauss, 0, c, 64, torch.Generator().manual_seed(1), prior_weight=lam)
    x1 = c / (1 + lam * s**2)
    assert np.abs(x[:, 0] - x1).max() < 0.04 and np.abs(x[:, 1] - RHO * x1).max() < 0.04
    assert info["prior_weight"] == lam and info["residual"] == pytest.approx(c - x1, abs=0.04)


def test_prior_weight_one_is_the_old_solver_and_large_pulls_to_the_prior_centre(gauss):
    """The default (MAP, λ = 1) is unchanged; λ -> large sends every z* to the prior's centre, so every
    answer decodes to decode(0) = 0 whatever was observed."""
    c = 1.2
    default, _ = latent_inversion(gauss, 0, c, 64, torch.Generator().manual_seed(1))
    one, _ = latent_inversion(gauss, 0, c, 64, torch.Generator().manual_seed(1), prior_weight=1.0)
    assert np.array_equal(default, one)
    radius = {}
    for lam in (0.0, 1.0, 100.0, 1e5):
        x, info = latent_inversion(gauss, 0, c, 256, torch.Generator().manual_seed(2), prior_weight=lam)
        radius[lam] = info["z_radius"]
    assert radius[0.0] > radius[1.0] > radius[100.0] > radius[1e5]
    assert radius[1e5] < 0.05 and np.abs(x).max() < 0.05 and info["residual"] > 1.1


def test_prior_weight_zero_is_the_unregularised_least_squares(gauss):
    """λ = 0: the data term pins z1 = c and leaves z2 at its start z2 ~ N(0, 1), so x2 = rho c + sqrt(1 - rho^2) z2:
    for this linear decoder the answers are spread like the true conditional N(rho c, 1 - rho^2), where
    the MAP (λ = 1) puts all of them on one point."""
    c = 0.7
    x, info = latent_inversion(gauss, 0, c, 2000, torch.Generator().manual_seed(3), prior_weight=0.0)
    assert info["residual"] < 0.02
    assert abs(x[:, 1].mean() - RHO * c) < 0.05 and abs(x[:, 1].std() - math.sqrt(1 - RHO**2)) < 0.05
    g = np.linspace(-5, 5, 600)
    truth = {"g": g, "p": _normal(g, RHO * c, 1 - RHO**2)}
    spread = {}
    for lam in (0.0, 1.0):
        a = solve(gauss, 0, c, truth, "latent", n=500, seed=0, solver=InverseConfig(prior_weight=lam))
        sc = score(a, truth, 0, c)
        spread[lam] = sc["spread"]
        assert sc["spread_truth"] == pytest.approx(math.sqrt(1 - RHO**2), abs=1e-3)
    assert spread[0.0] > 0.5 > 0.05 > spread[1.0]


def test_inverse_config_takes_set_values():
    from lab.base import ConfigError, make_config, parse_sets

    assert make_config(InverseConfig, {"prior_weight": "10"}).prior_weight == 10.0
    assert parse_sets(InverseConfig, ["prior_weight=0", "steps=50"]) == InverseConfig(0.0, 50)
    with pytest.raises(ConfigError, match="prior_weight"):
        make_config(InverseConfig, {"prior_weight": "-1"})


def test_off_manifold_fraction():
    """Answer points on the moons score 0 off the manifold; points 4 units above them score 1."""
    ds = make_dataset("moons")
    truth = true_conditional(ds, 0, 0.5, n=300)
    on = ds.sample(400, 5)
    for pts, want in ((on, 0.0), (on + np.array([0.0, 4.0]), 1.0)):
        a = Answer("x", "x", "latent", pts, info={"dim": 0})
        assert score(a, truth, 0, 0.5, dataset=ds)["off_manifold"] == pytest.approx(want, abs=0.03)
    assert manifold_level(ds) < np.median(ds.log_prob(on))


def test_inverse_page_lambda_sweep():
    """The λ widget reaches latent inversion: with the sweep on, an autoencoder's answers at λ = 0, 0.1, 1, 10
    are drawn, and the table shows the spread and the fraction off the manifold."""
    import os
    import time

    from streamlit.testing.v1 import AppTest

    from tests.conftest import built

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    at = AppTest.from_file(os.path.join(root, "pages", "inverse.py"), default_timeout=120)
    at.run()
    at.multiselect(key="inverse.families").set_value(["ae"]).run()
    at.select_slider(key="inverse.prior_weight").set_value(10.0)
    at.toggle(key="inverse.lambda_sweep").set_value(True).run()
    runner = at.session_state["runner"]
    t0 = time.time()
    while not built(runner, "inverse/ae") and time.time() - t0 < 30:
        time.sleep(0.1)
    at.button(key="inverse.step").click().run()
    while (runner.busy or runner.snapshot("inverse/ae").step == 0) and time.time() - t0 < 30:
        time.sleep(0.1)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    df = at.dataframe[0].value
    assert list(df["method"]) == ["latent"] and "λ = 10" in df["note"][0]
    assert ((df["off manifold"] >= 0) & (df["off manifold"] <= 1)).all() and (df["spread"] >= 0).all()
    fig = [c for c in at.get("plotly_chart")]
    assert any("λ (prior weight)" in c.proto.spec for c in fig), "the λ sweep figure is drawn"
