"""Flow matching against slow, obviously-correct references: an autograd Jacobian trace with fine Euler steps,
the exact velocity of Gaussian data, a grid integral, brute-force optimal transport, solver orders."""

import itertools
import math

import numpy as np
import pytest
import torch

from lab.fm import FlowMatching, FMConfig, odeint, ot_coupling, stable_target, transport_cost

MU, S = torch.tensor([0.7, -0.4]), 0.5  # Gaussian "data" N(MU, S^2 I) in z, whose marginal velocity is known


def _model(points, steps: int = 200, **kw) -> FlowMatching:
    cfg = {"hidden": 32, "layers": 2, "time_dim": 16, "ema_decay": 0.0, "warmup": 10} | kw
    model = FlowMatching(FMConfig(**cfg), points, seed=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):  # away from the init, so the checks see a real, curved field
        model.train_step(model.train_z[torch.randint(0, len(model.train_z), (128,), generator=g)])
    return model


@pytest.fixture(scope="module")
def trained():
    from lab.data import make_dataset

    return _model(make_dataset("moons").sample(512, seed=0))


def _oracle(t, x):
    """The exact marginal velocity for data N(MU, S^2 I): x_t ~ N(t MU, s_t^2 I), s_t^2 = (1 - t)^2 + t^2 S^2, and
    v(x, t) = E[x1 - x0 | x_t = x] = MU + (t S^2 - (1 - t)) / s_t^2 (x - t MU)."""
    t = float(t)
    s2 = (1 - t) ** 2 + t**2 * S**2
    return MU.to(x.dtype) + (t * S**2 - (1 - t)) / s2 * (x - t * MU.to(x.dtype))


def test_log_prob_equals_fine_euler_with_an_autograd_jacobian_trace(trained):
    """log p_1(z) = log N(x_0) - int_0^1 tr dv/dx dt with the trace of the full Jacobian by autograd and Euler steps
    backwards from t = 1: the slow reference for the two-term divergence and the RK4 solver. Euler's error is
    O(h), so the reference is Richardson's 2 E(h/2) - E(h) of 500 and 1000 steps."""
    model = trained
    z = torch.tensor([[0.3, -0.4], [-1.2, 0.8], [1.5, 1.1], [0.0, 0.0], [2.0, -1.5]])

    def euler_reference(n: int) -> torch.Tensor:
        h = 1.0 / n
        x, acc = z.double(), torch.zeros(len(z), dtype=torch.float64)
        for k in range(n):
            t = torch.tensor(1.0 - k * h, dtype=torch.float64)
            f = lambda v: model.velocity(v, t)  # noqa: B023
            J = torch.autograd.functional.jacobian(f, x)  # [n, 2, n, 2]: row i's own block is J[i, :, i, :]
            acc += torch.stack([torch.trace(J[i, :, i, :]) for i in range(len(z))]) * h
            x = x - h * f(x).detach()
        return -0.5 * (x**2).sum(1) - math.log(2 * math.pi) - acc

    model.net.double()
    try:
        ref = 2 * euler_reference(1000) - euler_reference(500)
    finally:
        model.net.float()
    lp = model.log_prob_z(z, "rk4", 50)
    assert torch.allclose(lp.double(), ref, atol=2e-3), (lp, ref)


def test_exact_velocity_gives_the_exact_gaussian_density_and_samples(moons_points, monkeypatch):
    """With the true v of N(MU, S^2 I) plugged in, sampling and log p reproduce that Gaussian (in z)."""
    model = FlowMatching(FMConfig(), moons_points, seed=0)
    monkeypatch.setattr(model, "velocity", lambda x, t, ema=True: _oracle(t, x))
    z = torch.randn(40_000, 2, generator=torch.Generator().manual_seed(1))
    x1 = model.integrate(z, "rk4", 20)
    assert torch.allclose(x1.mean(0), MU, atol=0.01) and torch.allclose(
        x1.std(0), torch.full((2,), S), atol=0.01
    )
    pts = MU + torch.tensor([[0.0, 0.0], [0.4, -0.3], [-0.9, 0.2], [1.5, 1.5]])
    true = -0.5 * ((pts - MU) ** 2).sum(1) / S**2 - math.log(2 * math.pi) - 2 * math.log(S)
    for method, steps, tol in (("rk4", 20, 1e-4), ("midpoint", 100, 1e-3), ("euler", 4000, 1e-2)):
        assert torch.allclose(model.log_prob_z(pts, method, steps), true, atol=tol), method


def test_density_integrates_to_one_in_data_coordinates(trained):
    """Riemann sum of exp(log p(x)) over a grid in data coordinates (the scaler's log-det included)."""
    lo, hi = trained.scaler.mean - 7 * trained.scaler.std, trained.scaler.mean + 7 * trained.scaler.std
    gx, gy = np.linspace(lo[0], hi[0], 121), np.linspace(lo[1], hi[1], 121)
    xx, yy = np.meshgrid(gx, gy)
    p = trained.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).double().exp().numpy()
    mass = p.sum() * (gx[1] - gx[0]) * (gy[1] - gy[0])
    assert abs(mass - 1.0) < 0.02, mass


def test_ot_coupling_is_the_optimal_permutation_and_beats_independent():
    g = torch.Generator().manual_seed(2)
    for n in (3, 5, 7):  # brute force over every permutation
        x0, x1 = torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g) + 1.0
        best = min(transport_cost(x0[list(p)], x1) for p in itertools.permutations(range(n)))
        assert math.isclose(transport_cost(ot_coupling(x0, x1), x1), best, rel_tol=1e-6)
    x0 = torch.randn(256, 2, generator=g)
    x1 = torch.cat([torch.randn(128, 2, generator=g) * 0.1 - 2, torch.randn(128, 2, generator=g) * 0.1 + 2])
    paired = ot_coupling(x0, x1)
    assert sorted(paired.tolist()) == sorted(x0.tolist())  # a permutation of the noise, nothing new
    assert transport_cost(paired, x1) < 0.6 * transport_cost(x0, x1)


@pytest.mark.parametrize("sigma", [0.0, 0.3])
def test_stable_target_converges_to_the_exact_velocity_of_gaussian_data(sigma):
    """With many references the stable target is the marginal velocity E[x1 - x0 | x_t] itself: for data
    N(MU, S^2 I) that is MU + (t S^2 - (1 - t)) / ((1 - t)^2 + t^2 S^2 + sigma^2) (x - t MU), a formula the
    estimator never uses (it only sees points)."""
    g = torch.Generator().manual_seed(0)
    n = 64
    x1 = MU + S * torch.randn(n, 2, generator=g, dtype=torch.float64)
    x0 = torch.randn(n, 2, generator=g, dtype=torch.float64)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 0.9
    x_t = (
        (1 - t[:, None]) * x0 + t[:, None] * x1 + sigma * torch.randn(n, 2, generator=g, dtype=torch.float64)
    )
    ref = MU + S * torch.randn(200_000, 2, generator=g, dtype=torch.float64)
    got = stable_target(x_t, t, x1, ref, sigma)
    s2 = (1 - t) ** 2 + t**2 * S**2 + sigma**2
    want = MU + ((t * S**2 - (1 - t)) / s2)[:, None] * (x_t - t[:, None] * MU)
    assert torch.allclose(got, want, atol=0.02), float((got - want).abs().max())
    # the conditional target x1 - x0 is the same field plus noise of order one
    assert (x1 - x0 - want).abs().max() > 0.5


def test_stable_target_without_references_is_the_conditional_velocity():
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(32, 2, generator=g), torch.randn(32, 2, generator=g)
    t = torch.rand(32, generator=g)
    x_t = (1 - t[:, None]) * x0 + t[:, None] * x1
    assert torch.allclose(stable_target(x_t, t, x1, torch.zeros(0, 2)), x1 - x0, atol=1e-4)


def test_stable_target_of_a_labelled_row_averages_over_its_class_only():
    """At t = 0 every point is equally likely (x_t is pure noise), so the target is mean(candidates) - x_t:
    over the row's class when same_class masks the others, over all of them when it does not."""
    ref = torch.tensor([[-3.0, 0.0], [-3.0, 0.0], [3.0, 0.0], [3.0, 0.0]])
    x1, x_t, t = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.5, 0.5]]), torch.zeros(1)
    mixed = stable_target(x_t, t, x1, ref)
    assert torch.allclose(mixed, torch.tensor([[0.6, 0.0]]) - x_t)  # mean of {x1} and ref: (3, 0) / 5
    classed = stable_target(x_t, t, x1, ref, same_class=torch.tensor([[False, False, True, True]]))
    assert torch.allclose(classed, torch.tensor([[3.0, 0.0]]) - x_t)


def test_the_stable_target_is_far_closer_to_the_velocity_than_the_conditional_one():
    """The point of the stable target: with a reference batch of the default size (256) its squared error to the
    marginal velocity (Gaussian data: known exactly) is a small fraction of that of x1 - x0, the noise that
    limits I-CFM's training."""
    g = torch.Generator().manual_seed(0)
    n = 4096
    x1, x0 = MU + S * torch.randn(n, 2, generator=g), torch.randn(n, 2, generator=g)
    t = torch.rand(n, generator=g)
    x_t = (1 - t[:, None]) * x0 + t[:, None] * x1
    v = torch.stack([_oracle(ti, xi[None])[0] for ti, xi in zip(t, x_t)])
    ref = MU + S * torch.randn(FMConfig().reference, 2, generator=g)
    stable = (stable_target(x_t, t, x1, ref) - v).pow(2).sum(1).mean()
    conditional = (x1 - x0 - v).pow(2).sum(1).mean()
    assert stable < 0.15 * conditional, (float(stable), float(conditional))


def test_solver_orders_on_a_rotation():
    """dx/dt = A x with A a rotation generator: x(1) = expm(A) x(0). Doubling the steps divides the error by
    2 (Euler), 4 (midpoint), 16 (RK4); RK4 with 10 steps beats Euler with 1000."""
    A = torch.tensor([[0.0, -2.0], [2.0, 0.0]], dtype=torch.float64)
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    exact = x0 @ torch.linalg.matrix_exp(A).T
    f = lambda t, x: x @ A.T

    def err(method, steps):
        return float((odeint(f, x0, 0.0, 1.0, steps, method)[0] - exact).norm())

    for method, order in (("euler", 1), ("midpoint", 2), ("rk4", 4)):
        ratio = err(method, 40) / err(method, 80)
        assert abs(math.log2(ratio) - order) < 0.15, (method, ratio)
    assert err("rk4", 10) < err("euler", 1000)
    # and backwards: integrating to t = 0 from the end returns the start
    back, _ = odeint(f, exact, 1.0, 0.0, 50, "rk4")
    assert torch.allclose(back, x0, atol=1e-6)


def test_rk4_with_few_steps_matches_euler_with_many_on_the_trained_field(trained):
    z = torch.randn(500, 2, generator=torch.Generator().manual_seed(3))
    fine = trained.integrate(z, "euler", 2000)
    assert (trained.integrate(z, "rk4", 16) - fine).norm(dim=1).max() < 0.01
    assert (trained.integrate(z, "euler", 16) - fine).norm(dim=1).max() > 0.01  # the check can fail


def test_reflow_makes_paths_straighter():
    """Continue training one model on its own (noise, sample) pairs and another on the data: the reflowed
    paths have less normalised path energy (Liu et al. 2023, Theorem 3.6: straightness does not increase)."""
    from lab.data import make_dataset

    pts = make_dataset("8gaussians").sample(2000, seed=0)
    kw = {"hidden": 64, "layers": 2, "lr": 3e-3, "reflow_every": 600, "reflow_pairs": 2000}
    plain, reflowed = _model(pts, 1200, **kw), _model(pts, 1200, reflow=1, **kw)
    assert plain.reflow_round == 0 and reflowed.reflow_round == 1
    x0 = torch.randn(1000, 2, generator=torch.Generator().manual_seed(4))
    s_plain, s_reflow = plain.straightness(x0), reflowed.straightness(x0)
    assert s_reflow < 0.5 * s_plain, (s_plain, s_reflow)


def test_live_sampler_settings_change_without_a_rebuild(trained):
    before = trained.sample(200, 1)
    trained.apply_live({"sampler": "euler", "steps": 3})
    try:
        after = trained.sample(200, 1)
        assert not torch.allclose(before, after)
        assert torch.allclose(after, trained.sample_with(200, "euler", 3, generator=1))
    finally:
        trained.apply_live({"sampler": FMConfig.sampler, "steps": FMConfig.steps})


def test_views(trained):
    v = trained.views(n_particles=10, grid=8)
    tr, vf = v["trajectories"], v["velocity_field"]
    assert tr["paths"].shape == (10, min(trained.config.steps, 50) + 1, 2) and tr["straightness"] >= 0
    assert vf["velocity"].shape == (len(vf["t"]), 8, 8, 2) and np.isfinite(vf["velocity"]).all()


def test_figures_from_views(trained):
    from lab.viz import fm as fv

    v = trained.views(n_particles=10, grid=8)
    data = trained.to_x(trained.train_z[:50])
    for fig in (fv.velocity_field_figure(v, 2, data), fv.paths_figure(v, None, data), fv.steps_figure(v)):
        assert fig.layout.title.text and len(fig.data) >= 2
    assert "straightness" in fv.paths_figure(v).layout.title.text
    assert len(fv.steps_figure(v).data) == 3  # one line per solver
    for fig in (fv.velocity_field_figure({}, 0), fv.paths_figure({}), fv.steps_figure({})):
        assert fig.layout.title.text  # "no views yet", never an exception
