"""Flow reference checks: change of variables against an autograd Jacobian, invertibility, normalisation."""

import math

import numpy as np
import pytest
import torch

from lab.base import make_model
from lab.flow import rq_spline
from tests.conftest import built, charts, info

VARIANTS = ["spline", "affine", "planar"]


def _trained(variant, moons_points, steps=30):
    cfg = {"variant": variant, "layers": 8 if variant == "planar" else 4, "hidden": 16, "ema": 0.0}
    model = make_model("flow", moons_points, cfg, seed=1)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):  # move away from the identity init so the checks see a real warp
        model.train_step(model.train_z[torch.randint(0, len(model.train_z), (128,), generator=g)])
    return model


@pytest.fixture(scope="module")
def models():
    from lab.data import make_dataset

    x = make_dataset("moons").sample(512, seed=0)
    return {v: _trained(v, x) for v in VARIANTS}


@pytest.mark.parametrize("variant", VARIANTS)
def test_log_prob_is_change_of_variables_with_autograd_jacobian(models, variant):
    """log p(z) = log N(f^-1(z)) + log|det J_{f^-1}(z)|, the Jacobian by autograd, all in float64."""
    model = models[variant]
    model.net.double()
    try:
        z = torch.tensor([[0.3, -0.4], [-1.2, 0.8], [1.5, 1.1], [0.0, 0.0], [5.2, -4.9]], dtype=torch.float64)
        lp = model._log_prob_z(z)
        for i in range(len(z)):
            J = torch.autograd.functional.jacobian(lambda v: model.inverse(v[None])[0][0], z[i])
            u = model.inverse(z[i : i + 1])[0][0]
            ref = float((-0.5 * (u**2).sum() - math.log(2 * math.pi) + torch.linalg.slogdet(J)[1]).detach())
            assert abs(float(lp[i].detach()) - ref) < 1e-8, (variant, i, float(lp[i].detach()), ref)
        # and the forward map's log-det is minus the inverse's at the image point
        u = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
        x, ld = model.forward(u)
        for i in range(len(u)):
            J = torch.autograd.functional.jacobian(lambda v: model.forward(v[None])[0][0], u[i])
            assert abs(float((ld[i] - torch.linalg.slogdet(J)[1]).detach())) < 1e-8
    finally:
        model.net.float()


@pytest.mark.parametrize("variant", VARIANTS)
def test_inverse_of_forward_is_identity(models, variant):
    """In float64: in float32 a round trip through a steep part of the map loses digits in proportion to
    its slope (5e-4 at a base point 5 standard deviations out, where an 8-bin spline's slope is ~1e-4)."""
    model = models[variant]
    model.net.double()
    try:
        u = torch.randn(500, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 1.5
        with torch.no_grad():
            x, ld_f = model.forward(u)
            back, ld_i = model.inverse(x)
        assert torch.allclose(back, u, atol=1e-8), float((back - u).abs().max())
        assert torch.allclose(ld_f, -ld_i, atol=1e-8)
    finally:
        model.net.float()


@pytest.mark.parametrize("variant", VARIANTS)
def test_density_integrates_to_one(models, variant):
    """Riemann sum of exp(log p) over a box holding all but a negligible tail, in data coordinates."""
    model = models[variant]
    m, s = model.scaler.mean, model.scaler.std
    n = 400
    gx = np.linspace(m[0] - 9 * s[0], m[0] + 9 * s[0], n)
    gy = np.linspace(m[1] - 9 * s[1], m[1] + 9 * s[1], n)
    xx, yy = np.meshgrid(gx, gy)
    p = model.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).double().exp().numpy()
    total = p.sum() * (gx[1] - gx[0]) * (gy[1] - gy[0])
    assert abs(total - 1) < 0.01, total


def test_spline_inverse_and_derivative_reference():
    """The RQ spline against finite differences and its own inverse, including the identity tails."""
    g = torch.Generator().manual_seed(0)
    n, K, B = 200, 7, 3.0
    x = torch.linspace(-4.5, 4.5, n, dtype=torch.float64)
    w, h, d = (
        torch.randn(1, k, generator=g, dtype=torch.float64).expand(n, k) * 2 for k in (K, K, K - 1)
    )  # one spline
    y, ld = rq_spline(x, w, h, d, B)
    back, ld_inv = rq_spline(y, w, h, d, B, inverse=True)
    assert torch.allclose(back, x, atol=1e-9) and torch.allclose(ld, -ld_inv, atol=1e-9)
    eps = 1e-6
    fd = (rq_spline(x + eps, w, h, d, B)[0] - rq_spline(x - eps, w, h, d, B)[0]) / (2 * eps)
    assert torch.allclose(ld, fd.log(), atol=1e-5)
    outside = x.abs() > B
    assert torch.equal(y[outside], x[outside])
    assert (torch.diff(y) > 0).all()  # monotone across the knots


def test_planar_inverse_gradient_is_the_implicit_one(models):
    """d log p / d theta through the numerical inverse equals a finite difference of log p."""
    model = models["planar"]
    model.net.double()
    try:
        z = torch.tensor([[0.4, -0.2], [-1.0, 0.9]], dtype=torch.float64)
        layer = model.layers[3]
        model.net.zero_grad()
        model._log_prob_z(z).sum().backward()
        grad = layer.u.grad.clone()
        eps = 1e-6
        fd = []
        for j in range(2):
            with torch.no_grad():
                layer.u[j] += eps
                up = model._log_prob_z(z).sum()
                layer.u[j] -= 2 * eps
                down = model._log_prob_z(z).sum()
                layer.u[j] += eps
            fd.append(float(up - down) / (2 * eps))
        assert torch.allclose(grad, torch.tensor(fd, dtype=torch.float64), atol=1e-5), (grad, fd)
    finally:
        model.net.zero_grad()
        model.net.float()


def test_views_shapes_and_last_layer_is_the_model(models):
    model = models["spline"]
    v = model.views(grid=24, n_points=50)
    K = v["n_layers"]
    assert v["layers"][0] == 0 and v["layers"][-1] == K
    assert v["trajectories"].shape == (K + 1, 50, 2)
    assert v["layer_log_prob"].shape == (len(v["layers"]), 24, 24)
    # the last panel is the model's own density on that grid
    xx, yy = np.meshgrid(v["density_x"], v["density_y"])
    lp = model.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).numpy().reshape(24, 24)
    assert np.allclose(v["layer_log_prob"][-1], lp, atol=1e-4)
    # layer 0 is the base Gaussian seen through the standardisation
    from scipy.stats import multivariate_normal

    ref = multivariate_normal(model.scaler.mean, np.diag(model.scaler.std**2)).logpdf(
        np.stack([xx.ravel(), yy.ravel()], 1)
    )
    assert np.allclose(v["layer_log_prob"][0].ravel(), ref, atol=1e-4)


def test_flows_page_trains_live_and_switches_variant():
    import os
    import time

    from streamlit.testing.v1 import AppTest

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    at = AppTest.from_file(os.path.join(root, "pages", "flows.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    runner = at.session_state["runner"]
    t0 = time.time()
    while not built(runner, "flows/flow") and time.time() - t0 < 30:  # the run is built in the background
        time.sleep(0.05)
    assert built(runner, "flows/flow"), "the run was not built within 30 s"
    at.button(key="flows.play").click().run()
    while runner.snapshot("flows/flow").step < 5 and time.time() - t0 < 30:
        time.sleep(0.1)
    assert runner.snapshot("flows/flow").step >= 5, "the run did not train 5 steps within 30 s"
    runner.pause()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(charts(at)) >= 8  # model, truth, warp, layers, animation, log-det, two curves
    at.selectbox(key="flows.variant").set_value("planar").run()
    assert not at.exception, [e.value for e in at.exception]
    while time.time() - t0 < 60 and not (
        built(runner, "flows/flow") and info(runner, "flows/flow")["config"].variant == "planar"
    ):
        time.sleep(0.05)
    assert info(runner, "flows/flow")["config"].variant == "planar"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    runner.close()


def test_loo_bandwidth_is_the_leave_one_out_maximum():
    """Against a loop that leaves each point out by hand, on the same grid; and it follows the data's scale."""
    from lab.flow import loo_bandwidth

    z = torch.randn(60, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * torch.tensor(
        [1.0, 0.3]
    )
    hs = torch.logspace(-3, 0.5, 48, dtype=torch.float64)

    def loo_log_lik(h):
        total = 0.0
        for i in range(len(z)):
            others = torch.cat([z[:i], z[i + 1 :]])
            k = torch.exp(-0.5 * ((z[i] - others) ** 2).sum(1) / h**2) / (2 * math.pi * h**2)
            total += math.log(float(k.mean())) if k.mean() > 0 else -math.inf  # underflow at tiny h
        return total

    ref = float(hs[int(np.argmax([loo_log_lik(float(h)) for h in hs]))])
    assert loo_bandwidth(z) == pytest.approx(ref, rel=1e-9)
    assert loo_bandwidth(3 * z) == pytest.approx(3 * ref, rel=0.2)  # one grid step is a factor 1.19
    assert loo_bandwidth(z[:5]) == 0.0
    # beyond max_points: the subset's bandwidth, shrunk by (m / n)^(1/6)
    big = torch.randn(200, 2, generator=torch.Generator().manual_seed(6))
    sub = big[torch.randperm(200, generator=torch.Generator().manual_seed(3))[:50]]
    assert loo_bandwidth(big, max_points=50, seed=3) == pytest.approx(
        loo_bandwidth(sub) * (50 / 200) ** (1 / 6), rel=1e-9
    )


def test_training_noise_floor_vanishes_with_data():
    """The noise regularisation keeps a floor on small data and nearly none on big data."""
    from lab.data import make_dataset
    from lab.flow import noise_std

    x = make_dataset("moons").sample(20_000, seed=0)
    small, big = make_model("flow", x[:300], seed=0), make_model("flow", x, seed=0)
    assert (
        small.noise_floor > 0.02
    )  # moons' leave-one-out bandwidth is ~0.07 standardised units at 300 points
    assert big.noise_floor < 0.1 * small.noise_floor
    cfg = small.config
    assert noise_std(cfg.noise, cfg.noise_half_life, 10**6, 300, small.noise_floor) == small.noise_floor
    assert noise_std(cfg.noise, cfg.noise_half_life, 0, 300, small.noise_floor) == pytest.approx(cfg.noise)
    assert make_model("flow", x[:300], {"noise_floor": 0.0}, seed=0).noise_floor == 0.0


def test_default_config_generalises_on_300_points():
    """Trained a fixed number of steps without early stopping on 300 checkerboard points, the default's
    held-out NLL stays within 0.05 nats of a cross-validated KDE on the same points (+0.02 measured;
    without the noise floor, noise_floor=0, the same run is 0.3 nats worse than the KDE)."""
    from lab.data import make_dataset
    from lab.metrics import test_nll
    from lab.run import RunSpec, fit

    ds = make_dataset("checkerboard")
    test = ds.sample(2000, seed=99)
    kde = fit(RunSpec("kde", ds, seed=1, n_train=300, max_steps=100))
    run = fit(RunSpec("flow", ds, seed=1, n_train=300, max_steps=700, early_stopping=False), chunk=100)
    assert run.step == 700
    gap = test_nll(run.model, test) - test_nll(kde.model, test)
    assert gap < 0.05, gap
