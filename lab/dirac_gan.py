"""The Dirac-GAN (Mescheder et al. 2018): the smallest GAN, whose two players circle their equilibrium.

The data is one point at 0, p_data = delta_0; the generator is one point theta, p_theta = delta_theta;
the discriminator is linear, D_psi(x) = psi x (a logit). The game, in the notation of lab/gan.py:

    V(theta, psi) = log sigmoid(D(0)) + log(1 - sigmoid(D(theta))) = -log 2 - softplus(psi theta)

D ascends V in psi, G descends its loss in theta. The equilibrium is (theta, psi) = (0, 0). Near it the
gradient field is v(theta, psi) = (f' psi, -f' theta) with f' = sigmoid(psi theta) ~ 1/2: a rotation,
orthogonal to (theta, psi): the continuous dynamics conserve theta^2 + psi^2 and circle forever (exactly
for minimax and wgan, near 0 for nonsaturating; the Jacobian's eigenvalues are +-i f'(0), on the imaginary
axis). Gradient steps of size h:

    simultaneous  both players step from the same point: the radius grows by sqrt(1 + h^2 f'^2) per step
                  (spirals out);
    alternating   D steps, then G from D's new psi (what lab/gan.py does): bounded, keeps circling;
    R1 (gamma)    D also pays gamma/2 |grad_x D(x)|^2 = gamma/2 psi^2 on the real point: psi gets a
                  -gamma psi pull, the eigenvalues get a negative real part, the players converge;
    EMA (beta)    theta_ema <- beta theta_ema + (1 - beta) theta: the average of a circle around 0 sits
                  nearer 0 than the circle itself (Yazici et al. 2019), without changing the game.

Losses: "minimax" (G descends V), "nonsaturating" (G descends -log sigmoid(psi theta)), "wgan"
(V = -psi theta, no clipping: a pure rotation). Pure numpy; a thousand steps take about a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOSSES = ("minimax", "nonsaturating", "wgan")
UPDATES = ("simultaneous", "alternating")


def _sigmoid(t):
    return 0.5 * (1.0 + np.tanh(0.5 * t))  # stable for large |t|; works on floats and arrays


def grad_d(theta, psi, loss: str = "minimax", r1_gamma: float = 0.0):
    """dV/dpsi minus the R1 pull: the direction D ascends. V = -log 2 - softplus(psi theta) (GAN) or
    -psi theta (WGAN); R1 adds -gamma/2 psi^2 to D's objective."""
    g = -theta if loss == "wgan" else -theta * _sigmoid(psi * theta)
    return g - r1_gamma * psi


def grad_g(theta, psi, loss: str = "minimax"):
    """d(G's loss)/dtheta: G descends it. minimax: V; nonsaturating: softplus(-psi theta); wgan: -psi theta."""
    if loss == "minimax":
        return -psi * _sigmoid(psi * theta)
    if loss == "nonsaturating":
        return -psi * _sigmoid(-psi * theta)
    return -psi


def vector_field(theta: np.ndarray, psi: np.ndarray, loss: str = "minimax", r1_gamma: float = 0.0):
    """The continuous-time dynamics (d theta/dt, d psi/dt) = (-dL_G/dtheta, dV/dpsi) on arrays of points."""
    t, p = np.asarray(theta, dtype=float), np.asarray(psi, dtype=float)
    return -grad_g(t, p, loss), grad_d(t, p, loss, r1_gamma)


@dataclass(frozen=True)
class DiracTrajectory:
    """One run of the Dirac-GAN: every iterate, step 0 (the start) to `steps`.

    theta, psi [steps + 1]: the players; theta_ema [steps + 1]: the EMA of theta (equal to theta when
    ema = 0); distance [steps + 1]: sqrt(theta^2 + psi^2), the distance to the equilibrium (0, 0).
    """

    theta: np.ndarray
    psi: np.ndarray
    theta_ema: np.ndarray
    label: str = ""

    @property
    def distance(self) -> np.ndarray:
        return np.hypot(self.theta, self.psi)


def trajectory(
    theta0: float = 1.0,
    psi0: float = 1.0,
    lr: float = 0.1,
    steps: int = 500,
    update: str = "simultaneous",
    loss: str = "minimax",
    r1_gamma: float = 0.0,
    ema: float = 0.0,
) -> DiracTrajectory:
    """Gradient steps of both players from (theta0, psi0); see the module docstring for each option."""
    if update not in UPDATES:
        raise ValueError(f"update must be one of {', '.join(UPDATES)}, got '{update}'.")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got '{loss}'.")
    if not (0 < lr <= 10 and 1 <= steps <= 100_000 and 0 <= ema < 1 and r1_gamma >= 0):
        raise ValueError("lr must be in (0, 10], steps in 1..100000, ema in [0, 1), r1_gamma >= 0.")
    th, ps = np.empty(steps + 1), np.empty(steps + 1)
    te = np.empty(steps + 1)
    th[0], ps[0], te[0] = theta0, psi0, theta0
    t, p, e = float(theta0), float(psi0), float(theta0)
    for k in range(1, steps + 1):
        if update == "simultaneous":
            dp, dt = grad_d(t, p, loss, r1_gamma), grad_g(t, p, loss)
            p, t = p + lr * dp, t - lr * dt
        else:  # D first, then G against the new D
            p = p + lr * grad_d(t, p, loss, r1_gamma)
            t = t - lr * grad_g(t, p, loss)
        if not (np.isfinite(t) and np.isfinite(p)) or abs(t) + abs(p) > 1e6:  # spiralled away: stop there
            th[k:], ps[k:], te[k:] = np.nan, np.nan, np.nan
            break
        e = ema * e + (1 - ema) * t if ema > 0 else t
        th[k], ps[k], te[k] = t, p, e
    return DiracTrajectory(th, ps, te)


# the lesson's four panels: the same start and step size under each rule
SCENARIOS: dict[str, dict] = {
    "simultaneous GD": dict(update="simultaneous"),
    "alternating GD (+ EMA of θ)": dict(update="alternating", ema=0.99),
    "simultaneous + R1 (γ = 0.5)": dict(update="simultaneous", r1_gamma=0.5),
    "alternating + R1 (γ = 0.5)": dict(update="alternating", r1_gamma=0.5),
}


def scenarios(
    lr: float = 0.1, steps: int = 500, loss: str = "minimax", gamma: float = 0.5, ema: float = 0.99
) -> list[DiracTrajectory]:
    """The lesson's trajectories from (1, 1): simultaneous, alternating with an EMA of theta, and both with R1."""
    out = []
    for name, kw in SCENARIOS.items():
        kw = dict(kw)
        if "r1_gamma" in kw:
            kw["r1_gamma"] = gamma
            name = name.replace("0.5", f"{gamma:g}")
        if "ema" in kw:
            kw["ema"] = ema
        tr = trajectory(1.0, 1.0, lr, steps, loss=loss, **kw)
        out.append(DiracTrajectory(tr.theta, tr.psi, tr.theta_ema, name))
    return out


LESSON = (
    "**Oscillations: the Dirac-GAN** (Mescheder et al. 2018). The data is one point at 0, the generator one point "
    "θ, the discriminator a line D(x) = ψx. The only equilibrium is θ = ψ = 0, and there the gradient field is a "
    "pure rotation: the continuous game keeps θ² + ψ² constant and circles forever. Simultaneous gradient steps "
    "spiral *out*; alternating steps (D, then G) keep circling; the R1 penalty γ/2 ψ² on D's slope at the data "
    "pulls ψ to 0 and the pair spirals *in*. An EMA of θ (dashed) averages the circle and sits near 0 while θ "
    "itself keeps swinging."
)
LESSON_2D = (
    "**The same on 2D data.** Below, the page's GAN twice, on the same data, seed and budget: without damping (R1 "
    "off, samples from the raw G) and with it (R1 on D, samples from the EMA of G's weights). Press Train and "
    "compare the clouds and the JSD. Measured on the 8 Gaussians, 3 seeds × 1000 steps (bench/gan_lessons.py; "
    "JSD every 50 steps over the second half): without damping the JSD stays at 0.24 ± 0.02 and 20 % ± 10 % of "
    "the samples are high quality; with damping 0.049 ± 0.007 and 73 % ± 2 % (energy distance 0.185 → 0.0056). "
    "Both keep all 8 modes, and the JSD's spread over the second half is about the same (0.030 vs 0.028): "
    "damping brings the generator much nearer the data, but at this budget it still moves."
)
