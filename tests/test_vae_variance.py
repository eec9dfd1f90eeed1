"""The VAE's decoder variance: fixed (the MSE loss), one learned log σ per dimension (global), σ(z) (learned);
and the ELBO gap log P(x) - ELBO it reports while training."""

import math

import numpy as np
import pytest
import torch

from lab.base import make_model, model_from_bytes, model_to_bytes
from lab.data import make_dataset
from lab.vae import gaussian_log_prob


@pytest.fixture(scope="module")
def moons():
    return make_dataset("moons").sample(2000, seed=0)


def _train(model, steps, batch=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for _ in range(steps):
        out = model.train_step(model.train_z[torch.randint(0, len(model.train_z), (batch,), generator=g)])
    return out


@pytest.mark.parametrize("variance", ["fixed", "global", "learned"])
def test_reconstruction_term_is_the_gaussian_nll(moons, variance):
    """log P(x|z) in _terms is minus torch's Gaussian NLL (full, with the 1/2 log 2π) at the decoder's own
    variance; for fixed σ it is the MSE: -||x - g(z)||² / 2σ² - 2 log σ - log 2π."""
    model = make_model("vae", moons, {"decoder_variance": variance, "decoder_std": 0.3, "prior": "standard"})
    _train(model, 20)
    x = model.train_z[:50]
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        log_px_z, _, _, _ = model._terms(x, 3, gen)
        mu, log_sigma = model.net.encode(x)
        z = mu + log_sigma.exp() * torch.randn(3, *mu.shape, generator=torch.Generator().manual_seed(0))
        mean, log_std = model.net.decode(z)
    var = torch.exp(2 * log_std)
    nll = torch.nn.functional.gaussian_nll_loss(mean, x.expand_as(mean), var, full=True, reduction="none")
    assert torch.allclose(log_px_z, -nll.sum(-1), atol=1e-4)
    if variance == "fixed":
        mse = ((x - mean) ** 2).sum(-1)
        assert torch.allclose(
            log_px_z, -mse / (2 * 0.3**2) - 2 * math.log(0.3) - math.log(2 * math.pi), atol=1e-4
        )
    if (
        variance == "global"
    ):  # one σ per output dimension: the same for every z, the parameter's (soft-floored)
        assert torch.allclose(log_std, log_std.reshape(-1, 2)[0].expand_as(log_std))
        floor = math.log(1e-3)  # a soft floor at σ = 1e-3, about 0.003 above the parameter at σ = 0.3
        want = floor + torch.nn.functional.softplus(model.net.log_std - floor)
        assert torch.allclose(log_std[0, 0], want) and torch.allclose(want, model.net.log_std, atol=0.01)
    if variance == "learned":  # σ(z) varies with z
        assert float(log_std.reshape(-1, 2).std(0).max()) > 1e-4


def test_gradients_reach_the_global_log_variance(moons):
    """The Gaussian NLL's gradient reaches log σ; training moves it from its start toward the reconstruction
    error, and at the ELBO's optimum for σ, σ² = E_Q[(x - g(z))²] per dimension (the σ-VAE's closed form)."""
    model = make_model(
        "vae",
        moons,
        {"decoder_variance": "global", "decoder_std": 1.0, "objective": "elbo", "prior": "standard"},
        seed=0,
    )
    x = model.train_z[:256]
    log_px_z, _, kl, _ = model._terms(x, 2, torch.Generator().manual_seed(0))
    (-log_px_z.mean() + kl.mean()).backward()
    g = model.net.log_std.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().min() > 0
    start = model.net.log_std.detach().clone()
    _train(model, 400)
    sigma = model.net.log_std.detach().exp()
    assert (sigma < start.exp() * 0.7).all()  # σ = 1 was far too wide for moons: it shrank
    with torch.no_grad():
        x = model.train_z
        mu, log_sigma = model.net.encode(x)
        z = mu + log_sigma.exp() * torch.randn(16, *mu.shape, generator=torch.Generator().manual_seed(1))
        resid = ((x - model.net.decode(z)[0]) ** 2).mean((0, 1)).sqrt()
    assert np.allclose(sigma.numpy(), resid.numpy(), rtol=0.25), (sigma, resid)


def test_global_variance_round_trips(moons):
    model = make_model("vae", moons, {"decoder_variance": "global"}, seed=0)
    _train(model, 30)
    again = model_from_bytes(model_to_bytes(model))
    assert torch.equal(again.net.log_std, model.net.log_std)
    assert torch.equal(again.sample(20, 3), model.sample(20, 3))


def test_elbo_gap_is_iwae_minus_elbo(moons):
    """The reported gap is log P(x) (IWAE, K = GAP_K) - ELBO on the same draws: >= 0, and agrees with
    log_prob_k minus elbo on those points within Monte Carlo error; it rides on every step's losses."""
    model = make_model("vae", moons, {"prior": "standard"}, seed=0)
    outs = [_train(model, 1) for _ in range(3)]
    assert all("elbo_gap" in o and "neg_log_px" in o for o in outs)
    assert outs[1]["elbo_gap"] == outs[0]["elbo_gap"]  # measured every GAP_EVERY steps, carried between
    _train(model, 200)
    now = model.elbo_gap()
    gap = now["elbo_gap"]
    assert gap >= 0
    idx = torch.linspace(0, len(model.train_z) - 1, model.GAP_POINTS).long()
    x = model.to_x(model.train_z[idx])
    ref = float((model.log_prob_k(x, 1024) - model.elbo(x, k=256)).mean())
    assert gap == pytest.approx(ref, abs=0.1 + 0.2 * ref)
    assert now["neg_log_px"] == pytest.approx(
        float(-model.log_prob_k(x, model.GAP_K).mean()), abs=0.1
    )  # other draws: MC error ~0.03


def test_page_decoder_variance_mode():
    """The page's Decoder variance mode trains three VAEs (fixed, global, learned σ) side by side with three
    pictures each, the ELBO panel draws the gap, and the text names the marginal and the three challenges."""
    import os
    import time

    from streamlit.testing.v1 import AppTest

    from tests.conftest import built, charts

    page = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "pages", "vae.py")
    at = AppTest.from_file(page, default_timeout=120).run()
    at.radio(key="vae.mode").set_value("Decoder variance").run()
    runner = at.session_state["runner"]
    t0 = time.time()
    ready = lambda: all(built(runner, f"vae/{k}") for k in ("fixed", "global", "learned"))  # noqa: E731
    while not ready() and time.time() - t0 < 300:  # three builds in the background; a busy machine is slow
        time.sleep(0.2)
    assert ready()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(charts(at)) == 9
    assert runner.snapshot("vae/vae") is None and runner.snapshot("vae/ae") is None
    text = " ".join(m.value for m in at.markdown)
    for words in (
        "p(x) = ∫ p(x|z) p(z) dz",
        "intractable",
        "Representation",
        "maximum likelihood",
        "Inference",
    ):
        assert words in text, words
    bold = [m.value for m in at.markdown]
    assert all(
        f"**{t}**" in bold for t in ("fixed σ: the MSE loss", "one learned σ per dimension", "learned σ(z)")
    )


def test_vampprior_learned_weights(moons):
    """prior_weights=learned: P(z) = sum_k softmax(logits)_k Q(z|u_k) integrates to 1 on a grid, the logits are
    trained (they move), the sampler draws components in proportion to their weights (the mixture's moments),
    and uniform weights give the same log P(z) as log 1/K sum_k."""
    model = make_model("vae", moons, {"prior_weights": "learned", "pseudo_inputs": 8, "hidden": 32}, seed=0)
    _train(model, 150)
    w = model.net.log_weights().exp().detach()
    assert float(w.max() - w.min()) > 1e-3 and float(w.sum()) == pytest.approx(1.0, abs=1e-6)
    t = torch.linspace(-8, 8, 401)
    zg = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        lp = model.log_prior(zg).double()
        mu, log_sigma = model.net.encode(model.net.pseudo)
        comp = gaussian_log_prob(zg[:, None], mu, log_sigma)  # [m, K]
    assert float(lp.exp().sum() * float(t[1] - t[0]) ** 2) == pytest.approx(1.0, abs=0.01)
    assert torch.allclose(lp, torch.logsumexp(comp.double() + w.double().log(), 1), rtol=1e-5, atol=1e-4)
    z = model.prior_sample_latent(40000, torch.Generator().manual_seed(0))
    mean, cov = model.prior_moments()
    assert np.allclose(z.mean(0).numpy(), mean, atol=0.03) and np.allclose(
        np.cov(z.numpy().T), cov, rtol=0.03, atol=0.03
    )
    uni = make_model("vae", moons, {"prior_weights": "uniform", "pseudo_inputs": 8, "hidden": 32}, seed=0)
    with torch.no_grad():
        mu, log_sigma = uni.net.encode(uni.net.pseudo)
        ref = torch.logsumexp(gaussian_log_prob(zg[:500, None], mu, log_sigma), 1) - math.log(8)
        assert torch.allclose(uni.log_prior(zg[:500]), ref, rtol=1e-5, atol=1e-4)
