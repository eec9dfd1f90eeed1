"""Autoencoder and VAE: the IWAE bound against a grid integral, ELBO identities, the latent interface, views, the page."""

import math

import numpy as np
import pytest
import torch

from lab.base import make_model
from lab.data import make_dataset
from lab.vae import gaussian_log_prob, kl_to_standard_normal
from tests.conftest import built, charts


@pytest.fixture(scope="module")
def moons():
    return make_dataset("moons").sample(2000, seed=0)


def _train(model, steps, batch=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for _ in range(steps):
        out = model.train_step(model.train_z[torch.randint(0, len(model.train_z), (batch,), generator=g)])
    return out


def _grid_log_marginal(model, x: np.ndarray, n: int) -> torch.Tensor:
    """Slow, obviously correct log P(x) = log integral P(x|z) P(z) dz by a Riemann sum over [-7, 7]^d (data coordinates)."""
    d = model.latent_dim
    t = torch.linspace(-7, 7, n)
    zg = t[:, None] if d == 1 else torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        mean, log_std = model.net.decode(zg)
        log_pz = model.log_prior(zg)  # N(0, I) or the VampPrior's mixture
        out = [torch.logsumexp(gaussian_log_prob(xi, mean, log_std) + log_pz, 0) for xi in model.to_z(x)]
    return torch.stack(out) + d * math.log(float(t[1] - t[0])) + model.scaler.log_det


@pytest.mark.parametrize("latent_dim", [1, 2])
@pytest.mark.parametrize("prior", ["standard", "vamp"])
def test_iwae_bound_against_grid_integral(moons, latent_dim, prior):
    """The IWAE bound tightens with K towards the true marginal of the trained model, never clearly above it."""
    cfg = {
        "latent_dim": latent_dim,
        "decoder_variance": "fixed",
        "decoder_std": 0.3,
        "hidden": 32,
        "layers": 2,
        "prior": prior,
    }
    model = make_model("vae", moons, cfg, seed=0)
    _train(model, 200)
    x = moons[:100]
    ref = _grid_log_marginal(model, x, 1401 if latent_dim == 1 else 241)
    gaps = {k: float((model.log_prob_k(x, k) - ref).mean()) for k in (1, 16, 4096)}
    elbo_gap = float((model.elbo(x) - ref).mean())
    assert abs(gaps[4096]) < 0.03  # the bound is tight at large K: the estimator and its constants are right
    assert gaps[1] < -0.1 and elbo_gap < -0.05  # one sample (the ELBO) is visibly looser
    assert gaps[16] > gaps[1] + 0.05  # and K tightens it


def test_iwae_k1_mean_is_the_elbo(moons):
    """E_Q[log P(x|z) + log P(z) - log Q(z|x)] = E_Q[log P(x|z)] - KL(Q || P) with the KL in closed form."""
    model = make_model("vae", moons, {"prior": "standard"}, seed=1)
    _train(model, 30)
    z = model.train_z[:5]
    with torch.no_grad():
        log_px_z, log_w_prior, kl, _ = model._terms(z, 40000, torch.Generator().manual_seed(0))
    mc = (log_px_z + log_w_prior).mean(0)
    closed = log_px_z.mean(0) - kl
    assert torch.allclose(mc, closed, atol=0.05)
    assert torch.allclose(-log_w_prior.mean(0), kl, atol=0.05)


def test_vampprior_is_a_normalised_density_that_its_sampler_follows(moons):
    """P(z) = 1/K sum_k Q(z|u_k): exp(log_prior) integrates to 1 on a grid, prior draws have the mixture's
    moments and the mean log-density the grid's -entropy; the pseudo-inputs are trained (they move)."""
    cfg = {"prior": "vamp", "prior_weights": "uniform", "pseudo_inputs": 16, "hidden": 32}
    model = make_model("vae", moons, cfg, seed=0)
    start = model.net.pseudo.detach().clone()
    _train(model, 100)
    assert not torch.allclose(model.net.pseudo, start)
    t = torch.linspace(-8, 8, 401)
    zg = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        lp = model.log_prior(zg).double()
    cell = float(t[1] - t[0]) ** 2
    p = lp.exp()
    assert float(p.sum() * cell) == pytest.approx(1.0, abs=0.01)
    z = model.prior_sample_latent(40000, torch.Generator().manual_seed(0))
    mean, cov = model.prior_moments()
    assert np.allclose(z.mean(0).numpy(), mean, atol=0.03)
    assert np.allclose(np.cov(z.numpy().T), cov, atol=0.05)
    with torch.no_grad():
        assert float(model.log_prior(z).mean()) == pytest.approx(float((p * lp).sum() * cell), abs=0.03)


def test_kl_closed_form_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, log_std = torch.randn(50, 2, generator=g), 0.5 * torch.randn(50, 2, generator=g)
    q = torch.distributions.Normal(mu, log_std.exp())
    p = torch.distributions.Normal(torch.zeros(2), torch.ones(2))
    assert torch.allclose(
        kl_to_standard_normal(mu, log_std), torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-5
    )
    x = torch.randn(50, 2, generator=g)
    assert torch.allclose(gaussian_log_prob(x, mu, log_std), q.log_prob(x).sum(-1), atol=1e-5)


def test_losses_split_and_log_prob_is_deterministic(moons):
    model = make_model("vae", moons, seed=2)
    out = _train(model, 20)
    assert set(out) >= {"recon", "kl", "neg_elbo", "beta", "loss"}
    assert out["neg_elbo"] == pytest.approx(out["recon"] + out["kl"])
    assert 0 < out["beta"] < 1  # still warming up the KL weight
    assert torch.equal(model.log_prob(moons[:30]), model.log_prob(moons[:30]))


@pytest.mark.parametrize("prior", ["standard", "vamp"])
def test_large_beta_collapses_the_posterior(moons, prior):
    """beta = 20 makes KL(Q(z|x) || P(z)) the dominant cost: Q(z|x) collapses onto the prior (KL -> 0)."""
    for objective in ("elbo", "iwae"):
        kl = {}
        for beta in (1.0, 20.0):
            cfg = {"beta": beta, "objective": objective, "kl_warmup": 50, "train_samples": 2, "prior": prior}
            model = make_model("vae", moons, cfg, seed=0)
            kl[beta] = _train(model, 300)["kl"]
        assert kl[20.0] < 0.15 < 1.0 < kl[1.0], (objective, kl)


@pytest.mark.parametrize("key", ["ae", "vae"])
@pytest.mark.parametrize("latent_dim", [1, 2])
def test_latent_interface(moons, key, latent_dim):
    """decode is differentiable in z (another page optimises latents through it); prior_sample_latent is seeded."""
    model = make_model(key, moons, {"latent_dim": latent_dim}, seed=0)
    _train(model, 5)
    assert model.latent_dim == latent_dim
    z = model.prior_sample_latent(7, torch.Generator().manual_seed(3))
    assert z.shape == (7, latent_dim)
    assert torch.equal(z, model.prior_sample_latent(7, torch.Generator().manual_seed(3)))
    z = z.clone().requires_grad_(True)
    x = model.decode(z)
    assert x.shape == (7, 2)
    x.sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_ae_samples_decode_the_fitted_code_gaussian(moons):
    """AE sampling: z ~ N(mean, cov) of the codes, then g(z); the fitted Gaussian matches numpy's moments."""
    model = make_model("ae", moons, {"latent_dim": 2}, seed=0)
    _train(model, 50)  # a refit every 50 steps
    with torch.no_grad():
        codes = model.net.encoder(model.train_z[:4096]).double().numpy()
    mean, cov = model.latent_gaussian()
    assert np.allclose(mean, codes.mean(0), atol=1e-4)
    assert np.allclose(cov, np.cov(codes.T), atol=1e-4)
    s = model.sample(20, 5)
    with torch.no_grad():
        ref = model.to_x(model.decode(model.prior_sample_latent(20, torch.Generator().manual_seed(5))))
    assert np.allclose(s.numpy(), ref, atol=1e-5)
    with pytest.raises(NotImplementedError, match="no density"):
        model.log_prob(moons[:3])


@pytest.mark.parametrize("key", ["ae", "vae"])
@pytest.mark.parametrize("latent_dim", [1, 2])
def test_views_are_consistent(moons, key, latent_dim):
    model = make_model(key, moons, {"latent_dim": latent_dim}, seed=0)
    _train(model, 20)
    v = model.views()
    n = len(v["data"])
    assert v["codes"].shape == (n, latent_dim) and v["recon"].shape == (n, 2)
    with torch.no_grad():
        codes = model.encode(model.to_z(v["data"]))[0]
        assert np.allclose(v["codes"], codes.numpy(), atol=1e-4)
        assert np.allclose(v["recon"], model.to_x(model.decode(codes)), atol=1e-4)
    assert (v["code_std"] is None) == (key == "ae")
    assert len(v["manifold_lines"]) == (1 if latent_dim == 1 else 22)
    agg = v["aggregate"]
    assert agg["q"].shape == agg["prior"].shape and np.all(agg["q"] >= 0)
    if key == "vae":  # N(0, I) and the aggregate posterior integrate to ~1 over the latent window
        cell = np.prod([a[1] - a[0] for a in agg["axes"]])
        assert agg["prior"].sum() * cell == pytest.approx(1.0, abs=0.02)
        assert agg["q"].sum() * cell == pytest.approx(1.0, abs=0.05)
    pts = np.array([[0.0, 0.5], [1.0, -0.3]])
    v2 = model.views(points=pts)
    assert np.allclose(v2["ellipse_x"], pts, atol=1e-5) and len(v2["ellipse_mu"]) == 2


def test_figures_build(moons):
    from lab.viz import vae as vv

    bounds = make_dataset("moons").bounds()
    for key, d in (("ae", 1), ("vae", 2), ("vae", 1)):
        model = make_model(key, moons, {"latent_dim": d}, seed=0)
        losses = _train(model, 5)
        v = model.views()
        sel = vv.spread_indices(len(v["codes"]), 4)
        for fig in (
            vv.latent_figure(v, bounds, sel),
            vv.aggregate_figure(v),
            vv.manifold_figure(v, bounds, moons),
            vv.reconstruction_figure(v, bounds, sel),
            vv.samples_blur_figure(model.sample(50).numpy(), moons, bounds, 1.0),
            vv.elbo_figure({k: (np.arange(3), np.full(3, val)) for k, val in losses.items()}),
        ):
            assert len(fig.data) > 0


def _wait_for(pred, timeout: float = 60.0) -> bool:
    import time

    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def test_page_runs_and_trains():
    import os

    from streamlit.testing.v1 import AppTest

    page = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pages", "vae.py")
    at = AppTest.from_file(page, default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    runner = at.session_state["runner"]
    assert _wait_for(lambda: built(runner, "vae/vae"))  # runs are built in the background
    at.run()
    assert not at.exception and len(charts(at)) == 6
    at.radio(key="vae.mode").set_value("Side by side").run()
    assert _wait_for(lambda: built(runner, "vae/ae"))
    at.run()
    assert not at.exception and len(charts(at)) == 12
    at.button(key="vae.step").click().run()
    assert _wait_for(lambda: runner.snapshot("vae/vae").step > 0 and runner.snapshot("vae/ae").step > 0)
    at.run()
    assert not at.exception
