"""GAN reference checks: D* against the formula and as V's maximiser, the gradient penalty, packing,
clipping, saturating vs non-saturating gradients, the decoder interface, the figures and the page."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn

from lab.data import make_dataset
from lab.gan import GAN, GANConfig
from lab.viz import gan as gv


@pytest.fixture(scope="module")
def ring():
    return make_dataset("8gaussians").sample(1024, seed=0)


def _model(x, **cfg):
    return GAN(GANConfig(**cfg), x, seed=1)


def test_kde_matches_a_sum_of_gaussian_pdfs():
    rng = np.random.default_rng(0)
    s, p, h = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) * 2, np.array([0.3, 0.5])
    slow = np.log([np.mean([multivariate_normal(si, np.diag(h**2)).pdf(pi) for si in s]) for pi in p])
    assert np.allclose(gv.kde_log_prob(p, s, h), slow, atol=1e-10)


def test_optimal_discriminator_is_the_formula_and_maximises_v():
    # two Gaussians on a fine grid: D* = p / (p + q), and any other D gives a smaller V(D, G)
    g = np.linspace(-6, 6, 241)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    lp = multivariate_normal([0, 0], np.eye(2)).logpdf(pts)
    lq = multivariate_normal([1, 0.5], 0.5 * np.eye(2)).logpdf(pts)
    d = gv.optimal_discriminator(lp, lq)
    p, q = np.exp(lp), np.exp(lq)
    assert np.allclose(d, p / (p + q))
    dA = (g[1] - g[0]) ** 2

    def value(dd):
        dd = np.clip(dd, 1e-12, 1 - 1e-12)
        return float(((p * np.log(dd) + q * np.log(1 - dd)) * dA).sum())

    best = value(d)
    rng = np.random.default_rng(1)
    for _ in range(5):
        assert value(np.clip(d + 0.05 * rng.normal(size=d.shape), 0, 1)) < best
    # and when p_g = p_data: D* = 1/2 and V = -log 4
    same = gv.optimal_discriminator(lp, lp)
    assert np.allclose(same, 0.5)
    assert value(same) == pytest.approx(-math.log(4), abs=1e-3)


def test_value_is_minus_log4_when_d_is_one_half(ring):
    m = _model(ring, loss="nonsaturating")
    zeros = torch.zeros(16)
    assert m._value(zeros, zeros) == pytest.approx(-math.log(4), abs=1e-6)


def test_gradient_penalty_of_a_linear_critic(ring):
    # f(x) = w . x has gradient w everywhere, so the penalty is exactly (|w| - 1)^2
    m = _model(ring, loss="wgan-gp", pack=3)
    lin = nn.Linear(6, 1)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.3, -1.2, 0.5, 2.0, 0.0, -0.7]]))
    m.net["D"] = lin
    real, fake = m.train_z[:30], torch.randn(30, 2)
    want = (lin.weight.norm() - 1) ** 2
    assert float(m._gradient_penalty(real, fake).detach()) == pytest.approx(float(want.detach()), rel=1e-5)


def test_packing_groups_consecutive_points_and_leaves_g_alone(ring):
    m1, m4 = _model(ring, pack=1), _model(ring, pack=4)
    x = torch.arange(16.0).reshape(8, 2)
    assert torch.equal(m4._pack(x)[1], torch.tensor([8.0, 9, 10, 11, 12, 13, 14, 15]))
    assert m4.net["D"][0].in_features == 8 and m1.net["D"][0].in_features == 2
    z = m1.prior_sample_latent(10, torch.Generator().manual_seed(0))
    assert torch.equal(m1.decode(z), m4.decode(z))  # packing changes only D's input
    out = m4.train_step(m4.train_z[:30])  # 30 is rounded down to whole packs
    assert all(math.isfinite(v) for v in out.values())


def test_wgan_keeps_the_critic_clipped(ring):
    m = _model(ring, loss="wgan", clip=0.02, d_steps=2)
    for _ in range(3):
        m.train_step(m.train_z[:64])
    assert all(float(p.detach().abs().max()) <= 0.02 + 1e-7 for p in m.net["D"].parameters())


def test_minimax_saturates_where_nonsaturating_does_not(ring):
    # a D that is sure every point is fake: logit -8 (D = 3e-4) with a slope
    grads = {}
    for loss in ("minimax", "nonsaturating"):
        m = _model(ring, loss=loss, pack=1)
        lin = nn.Linear(2, 1)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([[1.0, 0.5]]))
            lin.bias.fill_(-8.0)
        m.net["D"] = lin
        fz = torch.zeros(5, 2, requires_grad=True)
        (g,) = torch.autograd.grad(m._g_loss_per_pack(m._d(fz)).sum(), fz)
        grads[loss] = g.norm(dim=1)
    assert (grads["minimax"] < 1e-3 * grads["nonsaturating"]).all()
    assert torch.allclose(grads["nonsaturating"], torch.full((5,), math.sqrt(1.25)), rtol=1e-3)


def test_decoder_interface(ring):
    m = _model(ring, latent_dim=5, batch_norm=True)
    z = m.prior_sample_latent(7, torch.Generator().manual_seed(3)).requires_grad_(True)
    assert z.shape == (7, 5) and m.latent_dim == 5
    x = m.decode(z)
    assert x.shape == (7, 2)
    x.sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    # decode is G in standardised coordinates: sample() is decode of the same z, mapped to data
    zz = torch.randn(4, 5, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        assert torch.allclose(m.scaler.to_x(m.decode(zz)), m.sample(4, 9), atol=1e-6)


@pytest.mark.parametrize("loss", ["minimax", "nonsaturating", "wgan", "wgan-gp"])
def test_train_step_and_views(ring, loss):
    m = _model(ring, loss=loss, d_steps=2, pack=2, hidden=32)
    out = m.train_step(m.train_z[:64])
    assert {"d_loss", "g_loss", "value", "g_grad_norm"} <= set(out)
    v = m.views(grid=12, n_points=20, manifold=5)
    assert v["d_surface"].shape == (12, 12) and np.isfinite(v["d_surface"]).all()
    assert v["fake"].shape == (20, 2) and v["push"].shape == (20, 2) and v["manifold"].shape == (5, 5, 2)
    if loss in ("minimax", "nonsaturating"):
        assert ((v["d_surface"] >= 0) & (v["d_surface"] <= 1)).all()
    # the push arrows are -dL_G/dx in data units: compare with a finite difference along x for one point
    # (the pack of the first point is points 0 and 1)
    f = m.to_z(v["fake"][:2]).double()
    eps = 1e-4
    D = m.net["D"].double().eval()

    def lg(pts):
        return float(m._g_loss_per_pack(D(pts.reshape(1, -1)).squeeze(-1)).sum().detach())

    e = torch.zeros_like(f)
    e[0, 0] = eps
    fd = -(lg(f + e) - lg(f - e)) / (2 * eps) * m.scaler.std[0]
    assert v["push"][0, 0] == pytest.approx(fd, rel=1e-3, abs=1e-6)
    m.net["D"].float().train()


def test_figures_build(ring):
    ds = make_dataset("8gaussians")
    m = _model(ring, hidden=32)
    m.train_step(m.train_z[:64])
    v = m.views(grid=16, n_points=32, manifold=6)
    s = m.sample(200, 0).numpy()
    dstar = gv.optimal_discriminator_grid(ds, s, v["x"], v["y"])
    assert dstar.shape == (16, 16) and ((dstar >= 0) & (dstar <= 1)).all()
    figs = [
        gv.discriminator_figure(v, s),
        gv.optimal_figure(dstar, v["x"], v["y"], s),
        gv.push_figure(v, ring),
        gv.manifold_figure(v, ring),
        gv.mode_histogram(s, ds.modes, ds.mode_std),
        gv.coverage_figure(
            {
                "modes": (np.arange(3), np.array([2, 5, 8])),
                "high_quality": (np.arange(3), np.array([0.1, 0.5, 0.9])),
            }
        ),
        gv.value_figure({"value": (np.arange(3), np.array([-1.0, -1.3, -1.38]))}, "nonsaturating"),
        gv.loss_figure({"d_loss": (np.arange(2), np.ones(2)), "g_loss": (np.arange(2), np.ones(2))}),
        gv.grad_norm_figure({"seed 0": (np.arange(2), np.array([1.0, 0.0]))}),
    ]
    assert all(len(f.data) > 0 for f in figs)
    hist = gv.mode_histogram(ds.sample(100, 0), ds.modes, ds.mode_std)
    assert sum(hist.data[0].y) == 100


def test_page_runs_every_view():
    import os
    import time

    from streamlit.testing.v1 import AppTest

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    at = AppTest.from_file(os.path.join(root, "pages", "gan.py"), default_timeout=90).run()
    assert not at.exception, at.exception
    assert any("DCGAN guidelines" in e.label for e in at.expander)
    at.radio(key="gan.view").set_value("oscillations").run()
    assert not at.exception, at.exception
    assert any("Dirac-GAN" in m.value for m in at.markdown)
    runner = at.session_state["runner"]
    assert {"gan/undamped", "gan/damped"} <= set(runner.ids)
    at.radio(key="gan.view").set_value("seeds").run()
    assert not at.exception, at.exception
    at.number_input(key="gan.seeds_steps").set_value(100).run()
    at.button(key="gan.seeds_run").click().run()
    assert not at.exception, at.exception
    job = at.session_state["gan.seeds_job"]
    assert len(job.sweep.members) == 16 and job.sweep.max_steps == 100
    assert any("16 seeds" in c.value for c in at.caption)
    at.button(key="gan.seeds_stop").click().run()
    t0 = time.time()
    while not job.done and time.time() - t0 < 30:
        time.sleep(0.2)
    assert job.done
    runner.close()


def test_ema_generator_follows_the_formula(ring):
    m = _model(ring, ema=0.9, hidden=32)
    before = [p.detach().clone() for p in m.net["G_ema"].parameters()]
    m.train_step(m.train_z[:64])
    for b, pe, p in zip(before, m.net["G_ema"].parameters(), m.net["G"].parameters()):
        assert torch.allclose(pe, 0.9 * b + 0.1 * p.detach(), atol=1e-7)
    assert all(not p.requires_grad for p in m.net["G_ema"].parameters())
    raw = _model(ring, ema=0.0, hidden=32)
    assert "G_ema" not in raw.net


def test_r1_penalty_of_a_linear_discriminator(ring):
    # D(x) = w . x + b has grad_x D = w on every pack, so R1 = |w|^2 and D's loss grows by gamma/2 |w|^2;
    # two models with the same seed draw the same batches, so the losses differ by exactly that
    w = torch.tensor([[0.3, -1.2, 0.5, 2.0]])
    losses = {}
    for gamma in (0.0, 3.0):
        m = _model(ring, pack=2, r1_gamma=gamma, hidden=32)
        lin = nn.Linear(4, 1)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.fill_(0.1)
        m.net["D"] = lin
        d_real, r1 = m._d_and_r1(m.train_z[:8])
        assert float(r1.detach()) == pytest.approx(float((w**2).sum()), rel=1e-6)
        assert torch.allclose(d_real, m._d(m.train_z[:8]))
        out = m.train_step(m.train_z[:64])
        losses[gamma] = out
    assert losses[3.0]["r1"] == pytest.approx(float((w**2).sum()), rel=1e-6) and "r1" not in losses[0.0]
    assert losses[3.0]["d_loss"] - losses[0.0]["d_loss"] == pytest.approx(1.5 * float((w**2).sum()), rel=1e-5)


def test_r1_trains_d_flat_on_the_data(ring):
    # the penalty's gradient reaches D's weights (create_graph): a large gamma drives ||grad D(x)|| on real points down
    def grad_norm(m):
        _, r1 = m._d_and_r1(m.train_z[:256])
        return float(r1.detach())

    norms = {}
    for gamma in (0.0, 10.0):
        m = _model(ring, pack=1, r1_gamma=gamma, hidden=32, ema=0.0)
        for _ in range(100):
            m.train_step(m._real(64))
        norms[gamma] = grad_norm(m)
    assert norms[10.0] < 0.2 * norms[0.0]


def test_learning_rate_halves_every_half_life(ring):
    m = _model(ring, lr=1e-3, lr_half_life=4, hidden=32)
    for _ in range(9):  # step t (0-based) uses lr 0.5^(t / 4): the 9th step (t = 8) a quarter
        m.train_step(m.train_z[:64])
    assert all(g["lr"] == pytest.approx(2.5e-4) for o in m.optimizers for g in o.param_groups)
    m.set_lr(2e-3)  # a live change moves the base rate; the schedule continues from it
    m.train_step(m.train_z[:64])
    assert all(g["lr"] == pytest.approx(2e-3 * 0.5 ** (9 / 4)) for o in m.optimizers for g in o.param_groups)
    const = _model(ring, lr=1e-3, lr_half_life=0, hidden=32)
    for _ in range(9):
        const.train_step(const.train_z[:64])
    assert all(g["lr"] == 1e-3 for o in const.optimizers for g in o.param_groups)


def test_default_config_covers_the_ring():
    # a regression check on the defaults (R1, EMA, batch 256), by steps not time: 1500 steps keep every mode
    from lab.metrics import Evaluator
    from lab.run import RunSpec, fit

    ds = make_dataset("8gaussians")
    run = fit(RunSpec("gan", ds, GANConfig(), seed=0, n_train=5000, max_steps=1500))
    m = Evaluator(ds, n=500, seed=1000)(run.model, timing=False, n_mode_samples=2500)
    assert m["modes"] == 8 and m["high_quality"] > 0.7, m


# ---------------------------------------------------------------------------------------------
# JSD(p_data, p_g) = (V(D*, G) + log 4) / 2
# ---------------------------------------------------------------------------------------------


def _gauss_masses(mean, std, g):
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    lp = multivariate_normal(mean, std**2 * np.eye(2)).logpdf(pts).reshape(xx.shape)
    return lp, np.exp(lp) * (g[1] - g[0]) ** 2


def test_jsd_of_identical_densities_is_zero_and_of_disjoint_ones_log_2():
    from lab.gan import grid_jsd

    g = np.linspace(-10, 10, 401)
    _, p = _gauss_masses([-5, 0], 0.5, g)
    _, q = _gauss_masses([5, 0], 0.5, g)
    assert grid_jsd(p, p) == pytest.approx(0.0, abs=1e-12)
    assert grid_jsd(p, q) == pytest.approx(math.log(2), abs=1e-6)
    assert 0.05 < grid_jsd(p, _gauss_masses([-4, 0], 0.5, g)[1]) < math.log(2) - 0.05
    # mass outside the grid counts as disjoint: all of q outside -> log 2
    assert grid_jsd(p, np.zeros_like(p)) == pytest.approx(math.log(2), abs=1e-6)


def test_jsd_is_half_of_v_at_the_optimal_d_plus_log_4():
    # Goodfellow et al. 2014, Theorem 1: V(D*, G) = -log 4 + 2 JSD(p_data || p_g), checked on a grid
    from lab.gan import grid_jsd

    g = np.linspace(-7, 7, 281)
    lp, p = _gauss_masses([0, 0], 1.0, g)
    lq, q = _gauss_masses([1.5, -0.5], 0.7, g)
    d = gv.optimal_discriminator(lp, lq)
    log_d, log_1md = lp - np.logaddexp(lp, lq), lq - np.logaddexp(lp, lq)  # log D*, log(1 - D*), stably
    assert np.allclose(np.exp(log_d), d)
    v = float((p * log_d + q * log_1md).sum())
    assert grid_jsd(p, q) == pytest.approx(0.5 * (v + math.log(4)), abs=1e-6)


def test_smoothed_jsd_of_samples():
    from lab.gan import smoothed_jsd

    rng = np.random.default_rng(0)
    a = rng.normal(size=(1000, 2))
    box = np.array([[-6.0, -6.0], [6.0, 6.0]])
    assert smoothed_jsd(a, a, box) == pytest.approx(0.0, abs=1e-12)
    # two samples of one law: near 0 (the estimate's floor, which a narrower kernel raises)
    same, narrow = (
        smoothed_jsd(a, rng.normal(size=(1000, 2)), box, 0.3),
        smoothed_jsd(a, a * 1.0001, box, 0.1),
    )
    assert same < 0.015 and narrow < 1e-3
    near, far = smoothed_jsd(a, a + [0.5, 0], box, 0.3), smoothed_jsd(a * 0.1 - 3, a * 0.1 + 3, box)
    assert 0.02 < near < far and far == pytest.approx(math.log(2), abs=1e-3)


def test_the_gan_records_its_jsd_with_its_views_and_training_lowers_it(ring):
    m = _model(ring, hidden=32)
    v0 = m.views(grid=8, n_points=16, manifold=3)
    steps, vals = v0["jsd"]
    assert list(steps) == [0] and vals[0] > 0.4  # an untrained G is far from the ring
    assert 0 <= v0["jsd_floor"] < 0.02
    gen_state = m.gen.get_state()
    m.views(grid=8, n_points=16, manifold=3)  # the same step again: no second point
    assert len(m.jsd_history) == 1 and torch.equal(m.gen.get_state(), gen_state)  # training's RNG untouched
    for _ in range(400):
        m.train_step(m._real(256))
    steps, vals = m.views(grid=8, n_points=16, manifold=3)["jsd"]
    assert list(steps) == [0, 400] and vals[1] < 0.7 * vals[0]  # 0.69 -> 0.43 (seeded)
