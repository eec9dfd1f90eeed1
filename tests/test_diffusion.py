"""DDPM against slow, obviously-correct references: step-by-step noising, an exact Gaussian eps, DDIM(eta=1) = DDPM."""

import math
import os

import numpy as np
import pytest
import torch

from lab.diffusion import (
    DDPM,
    DDPMConfig,
    NoiseConditionalMLP,
    gaussian_kl_to_standard,
    make_betas,
    noised_empirical_score,
    sampler_sweep,
)

MU, S = (
    torch.tensor([0.7, -0.4]),
    0.5,
)  # a Gaussian "data" N(MU, S^2 I) in z, whose eps_theta is known exactly


def _model(moons_points, **kw) -> DDPM:
    return DDPM(DDPMConfig(hidden=32, layers=2, time_dim=16, x_embedding=4, **kw), moons_points, seed=0)


def _oracle(model: DDPM):
    """The exact noise predictor for N(MU, S^2 I): x_t ~ N(sqrt(ab) MU, (ab S^2 + 1 - ab) I),
    eps*(x, t) = -sqrt(1 - ab) grad log p_t(x) = sqrt(1 - ab) (x - sqrt(ab) MU) / (ab S^2 + 1 - ab)."""

    def eps(x, t, ema=True):  # t: steps [n], or one step (an int) for every row, as the samplers pass it
        ab = model.alpha_bar(torch.full((len(x),), t) if isinstance(t, int) else t).float()[:, None]
        return (1 - ab).sqrt() * (x - ab.sqrt() * MU) / (ab * S**2 + 1 - ab)

    return eps


def _use_oracle(m: DDPM, monkeypatch) -> None:
    """The samplers ask eps_at_steps for their steps' noise predictor: the oracle's, here."""
    oracle = _oracle(m)
    monkeypatch.setattr(m, "eps_theta", oracle)
    monkeypatch.setattr(m, "eps_at_steps", lambda tau, labels, w: lambda x, i: oracle(x, tau[i]))


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_closed_form_forward_marginal_matches_step_by_step_noising(moons_points, schedule):
    m = _model(moons_points, schedule=schedule, T=60)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[1.5, -0.5]]).repeat(40_000, 1)
    x = x0.clone()
    for t in range(30):  # x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps, one step at a time
        b = float(m.betas[t])
        x = math.sqrt(1 - b) * x + math.sqrt(b) * torch.randn(x.shape, generator=g)
    closed = m.q_sample(x0, torch.full((len(x0),), 29), torch.randn(x0.shape, generator=g))
    ab = float(m.alphas_cumprod[29])
    for s in (x, closed):
        assert torch.allclose(s.mean(0), math.sqrt(ab) * x0[0], atol=0.02)
        assert torch.allclose(s.var(0), torch.full((2,), 1 - ab), rtol=0.03)


def test_schedules():
    T = 1000
    b = make_betas("linear", T)
    assert math.isclose(float(b[0]), 1e-4) and math.isclose(float(b[-1]), 0.02)
    # the linear schedule rescaled to T = 100 ends near the same alpha_bar_T as T = 1000
    ab1000 = float(torch.cumprod(1 - b, 0)[-1])
    ab100 = float(torch.cumprod(1 - make_betas("linear", 100), 0)[-1])
    assert ab1000 < 1e-4 and ab100 < 1e-3
    c = make_betas("cosine", T)
    ab = torch.cumprod(1 - c, 0)
    f = lambda t: math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2
    for t in (0, 10, 500, 900):
        assert math.isclose(float(ab[t]), f(t + 1) / f(0), rel_tol=1e-9)
    assert float(c.max()) <= 0.999 and float(ab[-1]) < 1e-6


def test_ddim_with_eta_one_is_the_ancestral_sampler(moons_points):
    m = _model(moons_points, T=200)
    for steps in (200, 17):
        a, _ = m.reverse(300, torch.Generator().manual_seed(5), "ddpm", steps)
        b, _ = m.reverse(300, torch.Generator().manual_seed(5), "ddim", steps, eta=1.0)
        assert torch.allclose(a, b, atol=1e-4)


def test_ddim_eta_zero_is_deterministic_given_x_T(moons_points):
    m = _model(moons_points, T=100)
    x_T = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    a, _ = m.reverse(50, torch.Generator().manual_seed(2), "ddim", 10, eta=0.0, x_T=x_T)
    b, _ = m.reverse(50, torch.Generator().manual_seed(3), "ddim", 10, eta=0.0, x_T=x_T)
    assert torch.equal(a, b)


@pytest.mark.parametrize("sampler,steps", [("ddpm", 1000), ("ddim", 50)])
def test_samplers_with_the_exact_eps_reproduce_the_gaussian(moons_points, sampler, steps, monkeypatch):
    """Full-length ancestral sampling is exact; DDIM is an ODE solver, accurate at 50 steps (at 20 it under-disperses by ~8 %).
    (Respaced ancestral sampling with few steps is not: beta-tilde ignores Var[x0 | x_t] and under-disperses.)"""
    m = _model(moons_points, T=1000)
    _use_oracle(m, monkeypatch)
    x, _ = m.reverse(6000, torch.Generator().manual_seed(0), sampler, steps)
    assert torch.allclose(x.mean(0), MU, atol=0.03)
    assert torch.allclose(x.std(0), torch.full((2,), S), atol=0.03)


def test_inpaint_fixes_the_known_coordinate_and_samples_the_other(moons_points, monkeypatch):
    m = _model(moons_points, T=300)
    _use_oracle(m, monkeypatch)
    # value given in data coordinates; dims of the oracle Gaussian are independent, so
    # p(x_1 | x_0 = v) is the marginal N(MU_1, S^2) mapped to data coordinates
    v_z = 0.9
    v = v_z * m.scaler.std[0] + m.scaler.mean[0]
    x = m.inpaint(0, v, 4000, 0)
    assert x.shape == (4000, 2) and torch.all(x[:, 0] == torch.tensor(v, dtype=torch.float32))
    z1 = (x[:, 1] - m.scaler.mean[1]) / m.scaler.std[1]
    assert abs(float(z1.mean()) - float(MU[1])) < 0.04 and abs(float(z1.std()) - S) < 0.04


def test_v_prediction_is_an_exact_reparametrisation(moons_points):
    m = _model(moons_points, T=100, prediction="v")
    x0 = m.train_z[:64]
    t = torch.randint(0, 100, (64,), generator=torch.Generator().manual_seed(0))
    eps = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    x_t = m.q_sample(x0, t, eps)
    v_hat = m.net["ema"](x_t, t.float())
    e_hat = m.eps_theta(x_t, t)
    ab = m.alpha_bar(t).float()[:, None]
    # x0 from (x_t, eps_hat) equals x0 from (x_t, v_hat): sqrt(ab) x_t - sqrt(1 - ab) v
    assert torch.allclose(
        (x_t - (1 - ab).sqrt() * e_hat) / ab.sqrt(), ab.sqrt() * x_t - (1 - ab).sqrt() * v_hat, atol=1e-3
    )
    # and the true v gives back the true eps
    v = ab.sqrt() * eps - (1 - ab).sqrt() * x0
    assert torch.allclose((1 - ab).sqrt() * x_t + ab.sqrt() * v, eps, atol=1e-5)


@pytest.mark.parametrize("prediction", ["v", "eps"])
def test_one_step_for_every_row_is_the_same_as_a_step_per_row(moons_points, prediction):
    """The samplers pass one step as an int (embedded once); it must give what a step per row gives."""
    m = _model(moons_points, T=100, prediction=prediction)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    for t in (0, 37, 99):
        assert torch.allclose(m.eps_theta(x, t), m.eps_theta(x, torch.full((50,), t)), atol=1e-5)


@pytest.mark.parametrize("x_embedding,n_labels", [(0, 0), (4, 0), (4, 3)])
def test_a_network_at_fixed_levels_is_the_network(x_embedding, n_labels):
    """at_levels (a sampler's steps: each level's embedding through the first layer once) gives the same
    output as the network called with that level for every row (the null label for a conditional net)."""
    torch.manual_seed(0)
    net = NoiseConditionalMLP(32, 2, 16, x_embedding, n_labels)
    levels = torch.tensor([0.0, 37.0, 999.0])
    f = net.at_levels(levels)
    x = torch.randn(40, 2)
    for i, c in enumerate(levels):
        assert torch.allclose(f(x, i), net(x, c), atol=1e-5)


@pytest.mark.parametrize("prediction", ["v", "eps"])
def test_the_samplers_steps_are_eps_theta(moons_points, prediction):
    m = _model(moons_points, T=100, prediction=prediction)
    tau = m.timesteps(10).tolist()
    eps_at = m.eps_at_steps(tau, None, 0.0)
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    for i, t in enumerate(tau):
        assert torch.allclose(eps_at(x, i), m.eps_theta(x, t), atol=1e-5)


@pytest.mark.parametrize("t", [150, 400, 700])
def test_the_stable_target_is_near_the_exact_posterior_mean_of_eps_for_gaussian_data(t):
    """With a large reference batch the stable target is close to E[eps | x_t]: for data N(0, I) (what standardised
    Gaussian points are, up to sampling error) that is sqrt(1 - ab) x_t, a formula the model never uses. Its
    squared error is a small fraction of the single draw's (at small t the posterior is narrower than the
    references' spacing, the row's own point dominates, and the target is the draw itself)."""
    pts = np.random.default_rng(0).normal(size=(20_000, 2))
    model = DDPM(DDPMConfig(hidden=16, layers=1, reference=8192), pts, seed=0)
    g = torch.Generator().manual_seed(1)
    x0 = model.train_z[:1024]
    eps = torch.randn(1024, 2, generator=g)
    tt = torch.full((1024,), t)
    x_t = model.q_sample(x0, tt, eps)
    x0_hat, eps_hat = model.regression_targets(x_t, model.alpha_bar(tt).float(), x0, eps)
    ab = float(model.alpha_bar(tt[:1]))
    exact = math.sqrt(1 - ab) * x_t
    stable, draw = (eps_hat - exact).pow(2).sum(1).mean(), (eps - exact).pow(2).sum(1).mean()
    assert stable < 0.1 * draw, (float(stable), float(draw))
    # the two targets are one: eps = (x_t - sqrt(ab) x0) / sqrt(1 - ab) holds for the posterior means too
    assert torch.allclose(eps_hat, (x_t - math.sqrt(ab) * x0_hat) / math.sqrt(1 - ab), atol=1e-4)
    plain = DDPM(DDPMConfig(hidden=16, layers=1, target="conditional"), pts, seed=0)
    assert plain.regression_targets(x_t, model.alpha_bar(tt).float(), x0, eps) == (x0, eps)


def test_noised_empirical_score_is_the_gradient_of_the_mixture_log_density():
    g = torch.Generator().manual_seed(0)
    centres, x = torch.randn(300, 2, generator=g), torch.randn(40, 2, generator=g) * 2
    scale, sigma = 0.8, 0.3
    xr = x.double().requires_grad_(True)
    lp = torch.logsumexp(-0.5 * ((xr[:, None] - scale * centres.double()[None]) ** 2).sum(-1) / sigma**2, 1)
    (grad,) = torch.autograd.grad(lp.sum(), xr)
    assert torch.allclose(
        noised_empirical_score(x, centres, scale, sigma), grad.float(), rtol=1e-4, atol=1e-4
    )


def test_gaussian_kl_to_standard():
    g = torch.Generator().manual_seed(0)
    assert gaussian_kl_to_standard(torch.randn(50_000, 2, generator=g)) < 1e-3
    shifted = torch.randn(50_000, 2, generator=g) * 2 + torch.tensor([1.0, 0.0])
    expected = 0.5 * (4 + 4 + 1 - 2 - 2 * math.log(4))
    assert abs(gaussian_kl_to_standard(shifted) - expected) < 0.05


def test_views_and_sweep(moons_points):
    m = _model(moons_points, T=100, sample_steps=10)
    for _ in range(3):
        m.train_step(m.train_z[:64])
    v = m.views(n_forward=100, n_particles=8, grid=6)
    assert v["forward"]["points"].shape == (21, 100, 2)
    assert v["trajectories"]["paths"].shape == (8, 11, 2) and len(v["trajectories"]["time"]) == 11
    assert v["score_field"]["model"].shape == (5, 6, 6, 2) and v["score_field"]["error"].shape == (5, 6, 6)
    assert v["prior"]["signal"] < 1e-3 and v["prior"]["kl_gaussian"] < 0.1
    sw = sampler_sweep(m, moons_points, steps=(2, 5, 1000), n=50)
    assert sw["ddpm"]["steps"] == [2, 5, 100] and len(sw["ddim"]["energy"]) == 3


def test_figures_build(moons_points):
    from lab.viz import diffusion as dv

    m = _model(moons_points, T=50, sample_steps=5)
    v = m.views(n_forward=50, n_particles=4, grid=5)
    figs = [
        dv.forward_figure(v, 3),
        dv.prior_figure(v),
        dv.trajectories_figure(v, data=moons_points),
        dv.score_field_figure(v, 1, "model"),
        dv.score_field_figure(v, 1, "true"),
        dv.score_error_figure(v, 0),
        dv.steps_figure(sampler_sweep(m, moons_points, steps=(2, 5), n=20), floor=0.001),
    ]
    for fig in figs:  # every trace of every figure draws points (line traces separate their pieces by gaps)
        assert fig.data and all(np.isfinite(np.asarray(t.x, dtype=float)).any() for t in fig.data)
    forward, _, traj, _, _, err, steps = figs
    assert np.allclose(
        forward.data[0].x, v["forward"]["points"][3][:, 0]
    )  # the views' own points at that step
    assert len(traj.data[0].x) == len(moons_points)  # the data behind the trajectories
    assert np.allclose(np.asarray(err.data[0].z, dtype=float), v["score_field"]["error"][0], equal_nan=True)
    assert [len(t.x) for t in steps.data] == [2, 2, 2, 2]  # DDPM and DDIM, quality and time, at 2 and 5 steps
    empty = dv.steps_figure(None)  # before a sweep: no traces, a hint instead
    assert not empty.data and empty.layout.annotations


def test_page_runs():
    from streamlit.testing.v1 import AppTest

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    at = AppTest.from_file(os.path.join(root, "pages", "diffusion.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    at.radio(key="diffusion.model").set_value("score").run()
    assert not at.exception, at.exception
