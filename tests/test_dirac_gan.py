"""The Dirac-GAN (Mescheder et al. 2018): the undamped game circles or spirals out, R1 converges, EMA averages."""

import numpy as np
import pytest

from lab import dirac_gan as dg


@pytest.mark.parametrize("loss", ["minimax", "wgan"])
def test_the_undamped_field_is_a_rotation_that_conserves_the_radius(loss):
    # d/dt (theta^2 + psi^2) = 2 (theta, psi) . v = 0 everywhere for minimax and wgan
    rng = np.random.default_rng(0)
    t, p = rng.normal(size=200) * 3, rng.normal(size=200) * 3
    vt, vp = dg.vector_field(t, p, loss)
    assert np.allclose(t * vt + p * vp, 0.0, atol=1e-12)
    assert np.hypot(vt, vp).min() > 0  # and it does move: a rotation, not a rest point


def test_the_gradients_are_the_derivatives_of_the_game():
    # finite differences of V = -log 2 - softplus(psi theta) and of the non-saturating loss
    def V(t, p):
        return -np.log(2) - np.logaddexp(0, p * t)

    def ns(t, p):
        return np.logaddexp(0, -p * t)

    t, p, e = 0.7, -1.3, 1e-6
    assert dg.grad_d(t, p) == pytest.approx((V(t, p + e) - V(t, p - e)) / (2 * e), rel=1e-6)
    assert dg.grad_g(t, p) == pytest.approx((V(t + e, p) - V(t - e, p)) / (2 * e), rel=1e-6)
    assert dg.grad_g(t, p, "nonsaturating") == pytest.approx(
        (ns(t + e, p) - ns(t - e, p)) / (2 * e), rel=1e-6
    )
    assert dg.grad_d(t, p, r1_gamma=2.0) == pytest.approx(dg.grad_d(t, p) - 2.0 * p)


def test_rk4_integration_of_the_continuous_dynamics_keeps_the_radius():
    t, p, h = 1.0, 1.0, 0.01

    def f(t, p):
        return dg.vector_field(t, p)

    for _ in range(2000):
        k1 = f(t, p)
        k2 = f(t + h / 2 * k1[0], p + h / 2 * k1[1])
        k3 = f(t + h / 2 * k2[0], p + h / 2 * k2[1])
        k4 = f(t + h * k3[0], p + h * k3[1])
        t += h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        p += h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    assert np.hypot(t, p) == pytest.approx(np.sqrt(2), rel=1e-6)


def test_without_damping_the_distance_does_not_shrink_and_with_r1_it_does():
    simul = dg.trajectory(1.0, 1.0, lr=0.1, steps=1000, update="simultaneous")
    alt = dg.trajectory(1.0, 1.0, lr=0.1, steps=1000, update="alternating")
    d0 = np.sqrt(2)
    assert (np.diff(simul.distance) > 0).all()  # simultaneous GD spirals out, every step
    assert simul.distance[-1] > 1.5 * d0
    assert alt.distance.min() > 0.9 * d0  # alternating GD keeps circling, never nearer than 90 %
    # ... and it does go round: theta changes sign several times
    assert (np.diff(np.sign(alt.theta)) != 0).sum() >= 4
    for update in dg.UPDATES:
        r1 = dg.trajectory(1.0, 1.0, lr=0.1, steps=1000, update=update, r1_gamma=0.5)
        assert r1.distance[-1] < 1e-3 * d0
        assert r1.distance[500] < r1.distance[100] < r1.distance[0]


def test_ema_of_theta_sits_near_the_equilibrium_while_theta_circles():
    alt = dg.trajectory(1.0, 1.0, lr=0.1, steps=2000, update="alternating", ema=0.99)
    late = slice(1000, None)
    assert np.abs(alt.theta[late]).max() > 1.0  # theta still swings by more than 1
    assert np.abs(alt.theta_ema[late]).max() < 0.35 * np.abs(alt.theta[late]).max()
    raw = dg.trajectory(1.0, 1.0, lr=0.1, steps=50, update="alternating")
    assert np.array_equal(raw.theta, raw.theta_ema)  # ema = 0: theta itself


def test_a_runaway_trajectory_stops_with_nan_and_bad_options_are_one_sentence():
    tr = dg.trajectory(1.0, 1.0, lr=2.0, steps=2000, update="simultaneous", loss="wgan")
    assert np.isnan(tr.theta[-1]) and np.isfinite(tr.theta[0])
    with pytest.raises(ValueError, match="update must be one of"):
        dg.trajectory(update="sideways")
    with pytest.raises(ValueError, match="lr must be"):
        dg.trajectory(lr=-1)


def test_scenarios_and_their_figure():
    from lab.viz import gan as gv

    trs = dg.scenarios(steps=300)
    assert len(trs) == 4 and all(len(t.theta) == 301 for t in trs)
    assert all(len(f.data) > 0 for f in (gv.dirac_figure(trs), gv.dirac_distance_figure(trs)))
