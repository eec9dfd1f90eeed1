"""Flow matching (Lipman et al. 2023), rectified flow and reflow (Liu et al. 2023), OT-CFM (Tong et al. 2024)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from lab.base import Config, GenerativeModel, option
from lab.diffusion import (
    NoiseConditionalMLP,
    field_grid,
    make_ema_pair,
    posterior_mean,
    reference_batch,
    reference_option,
    target_option,
    throttled,
    warmup_ema_step,
)
from lab.guidance import (
    MAX_CLASSES,
    ClassConditional,
    conditional_option,
    drop_labels,
    guidance_option,
    guided_call,
    p_uncond_option,
)
from lab.metrics import energy_distance

SOLVERS = ("euler", "midpoint", "rk4")
# t in [0, 1] enters the sinusoidal embedding as TIME_SCALE * t. DDPM's integer steps use 0..1000, but here
# the ODE solvers sample v_theta at any t: cos(1000 t) would make the field oscillate every 0.006 in t and
# RK4 with 20 steps would miss it (log p off by ~0.1 nats); with 5 the fastest feature has period 1.26.
TIME_SCALE = 5.0
EVALS_PER_STEP = {"euler": 1, "midpoint": 2, "rk4": 4}


# ---------------------------------------------------------------------------------------------
# Fixed-step ODE solvers: dx/dt = f(t, x) from t0 to t1 (t1 < t0 integrates backwards).
# ---------------------------------------------------------------------------------------------


def odeint(
    f: Callable[[float, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    t0: float,
    t1: float,
    steps: int,
    method: str = "euler",
    record: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Integrate dx/dt = f(t, x) with `steps` equal steps h = (t1 - t0) / steps.

    euler:    x' = x + h f(t, x)                                              (order 1)
    midpoint: x' = x + h f(t + h/2, x + h/2 f(t, x))                          (order 2)
    rk4:      x' = x + h/6 (k1 + 2 k2 + 2 k3 + k4), the classical Runge-Kutta (order 4)
    Returns (x at t1, [x at t0, ..., x at t1] if record).
    """
    if method not in SOLVERS:
        raise ValueError(f"unknown solver {method!r}; choose one of {', '.join(SOLVERS)}")
    steps = max(int(steps), 1)
    h = (t1 - t0) / steps
    path = [x] if record else []
    for i in range(steps):
        t = t0 + i * h
        if method == "euler":
            x = x + h * f(t, x)
        elif method == "midpoint":
            x = x + h * f(t + h / 2, x + h / 2 * f(t, x))
        else:
            k1 = f(t, x)
            k2 = f(t + h / 2, x + h / 2 * k1)
            k3 = f(t + h / 2, x + h / 2 * k2)
            k4 = f(t + h, x + h * k3)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        if record:
            path.append(x)
    return x, path


# ---------------------------------------------------------------------------------------------
# Couplings of noise x0 and data x1 within a batch
# ---------------------------------------------------------------------------------------------


def ot_coupling(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """x0 reordered so that (x0[i], x1[i]) is the exact optimal-transport matching of the batch.

    Mini-batch OT (Tong et al. 2024, OT-CFM; Pooladian et al. 2023): the permutation sigma that
    minimises sum_i |x0_sigma(i) - x1_i|^2, found by the Hungarian algorithm on the n x n cost.
    With uniform weights and equal sizes the exact OT plan is a permutation (Birkhoff), so this is the
    plan of Tong et al.'s `OTPlanSampler(method="exact")`, without sampling from it.
    """
    cost = torch.cdist(x1.double(), x0.double()).pow(2).cpu().numpy()  # [n data, n noise]
    rows, cols = linear_sum_assignment(cost)
    return x0[torch.as_tensor(cols[np.argsort(rows)], device=x0.device)]


def stable_target(
    x_t: torch.Tensor,
    t: torch.Tensor,
    x1: torch.Tensor,
    ref: torch.Tensor,
    sigma: float = 0.0,
    same_class: torch.Tensor | None = None,
) -> torch.Tensor:
    """The stable target field (Xu et al. 2023) of the straight path: E[x1 - x0 | x_t] over {x1} and `ref`.

    Under the independent coupling x_t | y ~ N(t y, s^2 I) with s^2 = (1 - t)^2 + sigma^2, and the velocity
    that y would give x_t is u(y) = y - (1 - t)(x_t - t y) / s^2 (= (y - x_t) / (1 - t) at sigma = 0): affine in
    y, so the mean of u over the posterior of the candidates is u of their mean (lab.diffusion.posterior_mean).
    x_t, x1 [n, 2]; t [n]; ref [R, 2]; same_class [n, R]. With an empty ref, exactly the conditional target.
    """
    s2 = (1 - t).pow(2) + sigma**2
    y_bar = posterior_mean(x_t, t, s2, x1, ref, same_class)
    return y_bar + ((1 - t) / s2.clamp_min(1e-12))[:, None] * (t[:, None] * y_bar - x_t)


def transport_cost(x0: torch.Tensor, x1: torch.Tensor) -> float:
    """Mean squared distance of the pairs (x0[i], x1[i]): what a coupling pays, E|x1 - x0|^2."""
    return float((x1 - x0).pow(2).sum(1).mean())


# ---------------------------------------------------------------------------------------------
# The family
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FMConfig(Config):
    lr: float = option(3e-3, "learning rate (after the warm-up)", min=1e-5, max=1.0, log=True, live=True)
    batch_size: int = option(256, "points per training step", min=8, max=4096)
    coupling: str = option(
        "independent",
        "pairs of noise and data: independent (I-CFM) or exact mini-batch optimal transport (OT-CFM)",
        choices=["independent", "ot"],
    )
    sigma: float = option(
        0.0,
        "std of Gaussian noise around the straight path (Tong et al.'s sigma; 0: rectified flow)",
        min=0.0,
        max=1.0,
    )
    target: str = target_option()
    reference: int = reference_option()
    t_sampling: str = option(
        "uniform",
        "training times: uniform, logit-normal (Esser et al. 2024) or late "
        "t = 1 - (1 - u)^2 (more weight near the data)",
        choices=["uniform", "logit-normal", "late"],
    )
    reflow: int = option(
        0, "rectified-flow reflow rounds k: retrain on the model's own (noise, sample) pairs", min=0, max=5
    )
    reflow_every: int = option(2000, "training steps before each reflow round", min=10, max=100_000)
    reflow_pairs: int = option(
        4096, "(noise, sample) pairs drawn for each reflow round", min=256, max=100_000
    )
    sampler: str = option("rk4", "ODE solver for sampling and log p", choices=list(SOLVERS), live=True)
    steps: int = option(20, "solver steps from noise (t = 0) to data (t = 1)", min=1, max=1000, live=True)
    density_steps: int = option(
        20, "solver steps of the backward ODE that gives log p", min=1, max=1000, live=True
    )
    hidden: int = option(128, "hidden units per layer of v_theta", min=16, max=1024)
    layers: int = option(3, "hidden layers of v_theta", min=1, max=8)
    time_dim: int = option(32, "size of the sinusoidal embedding of t", min=4, max=256)
    x_embedding: int = option(32, "sinusoidal features per coordinate of x (0: raw x only)", min=0, max=128)
    ema_decay: float = option(0.999, "EMA of the weights used for sampling (0: no EMA)", min=0.0, max=0.9999)
    warmup: int = option(100, "steps of linear learning-rate warm-up", min=0, max=10_000)
    conditional: bool = conditional_option()
    p_uncond: float = p_uncond_option()
    guidance: float = guidance_option()


class FlowMatching(ClassConditional, GenerativeModel):
    """Conditional flow matching on the straight path between noise and data.

    Path (Lipman et al. 2023 with sigma_min = 0; Liu et al. 2023's rectified flow):
      x_t = (1 - t) x0 + t x1 (+ sigma eps),  x0 ~ N(0, I), x1 ~ data, t ~ U[0, 1],
    whose conditional velocity is u_t = x1 - x0. Loss (CFM, Lipman et al. eq. 9; Tong et al. eq. 14):
      L(theta) = E_{t, (x0, x1) ~ pi} |v_theta(x_t, t) - (x1 - x0)|^2,
    with pi the independent coupling q(x0) q(x1) (I-CFM) or the mini-batch OT plan (OT-CFM). Its
    minimiser is the marginal velocity v(x, t) = E[x1 - x0 | x_t = x], whose ODE dx/dt = v carries
    N(0, I) at t = 0 to the data at t = 1. Sampling integrates it with Euler / midpoint / RK4.
    With the independent coupling the regression target is by default the stable target field (Xu et al.
    2023, `stable_target`): x1 - x0 averaged over the posterior of the row's own x1 and a reference batch,
    the same minimiser with ~1/15 of the target noise (moons KL at 15 s: 0.034 -> 0.014, bench/fm.py).

    Density, exactly up to the solver (the instantaneous change of variables, Chen et al. 2018):
      d/dt log p_t(x_t) = -div v(x_t, t),  so  log p_1(x1) = log N(x0; 0, I) - int_0^1 div v(x_t, t) dt,
    integrated backwards from x1 at t = 1 to x0 at t = 0. In 2D div v = dv_1/dx_1 + dv_2/dx_2 is two
    autograd terms (FFJORD, Grathwohl et al. 2019, without its Hutchinson trace estimator).

    Reflow (Liu et al. 2023, Algorithm 1): after every `reflow_every` steps, for `reflow` rounds,
    draw pairs (x0, x1 = ODE(x0)) from the model itself and keep training on those pairs only: the
    new coupling has paths that do not cross, so the next flow is straighter and needs fewer steps.

    Conditional (classifier-free guidance, Ho & Salimans 2022, on the velocity): v_theta(x_t, t, c) with the
    label dropped to null with probability p_uncond; sampling follows (1 + w) v(x, t, c) - w v(x, t, null).
    Its density, by the same ODE, is the mixture sum_c P(c) p_w(x | c) of the guided flows.
    """

    key = "fm"
    title = "Flow matching (CFM / rectified flow)"
    Config = FMConfig
    has_log_prob = True
    density_kind = "exact"
    early_stopping = False  # the validation NLL integrates an ODE per point: too costly to check often

    def _build(self):
        cfg = self.config
        n_labels = MAX_CLASSES if cfg.conditional else 0
        self.net = make_ema_pair(
            NoiseConditionalMLP(cfg.hidden, cfg.layers, cfg.time_dim, cfg.x_embedding, n_labels)
        )
        self._build_labels()
        self.optimizers = [torch.optim.Adam(self.net["model"].parameters(), lr=cfg.lr, fused=True)]
        self.step_count = 0
        self.reflow_round = 0  # 0: trained on data; r: on the pairs of the r-th reflow
        # (x0, x1, labels or None) of the current reflow round
        self.pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    # -- the velocity field ------------------------------------------------------------------------
    def velocity(
        self,
        x: torch.Tensor,
        t: torch.Tensor | float,
        ema: bool = True,
        labels: torch.Tensor | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor:
        """v_theta(x, t) [n, 2] in z; t [n] or one float for every row. t is embedded as TIME_SCALE t.
        A conditional model: for class `labels` [n] (None: the null label, the unconditional flow), guided
        with weight `guidance` (the config's when None; lab.guidance.guide)."""
        net = self.net["ema"] if ema and self.config.ema_decay > 0 else self.net["model"]
        t = torch.as_tensor(t, dtype=x.dtype, device=self.device)
        if labels is None:
            return net(x, TIME_SCALE * t)
        w = self.config.guidance if guidance is None else guidance
        return guided_call(net, x, TIME_SCALE * t, labels, w)

    def velocity_and_divergence(
        self, x: torch.Tensor, t: float, labels: torch.Tensor | None = None, guidance: float | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(v_theta(x, t) [n, 2], div v_theta(x, t) [n]): the trace of the 2 x 2 Jacobian by two vector-Jacobian
        products. Rows do not interact, so the gradient of the sum over rows is each row's own derivative."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            v = (
                self.velocity(x, t)
                if labels is None
                else self.velocity(x, t, labels=labels, guidance=guidance)
            )
            d0 = torch.autograd.grad(v[:, 0].sum(), x, retain_graph=True)[0][:, 0]
            d1 = torch.autograd.grad(v[:, 1].sum(), x)[0][:, 1]
        return v.detach(), (d0 + d1).detach()

    # -- training ------------------------------------------------------------------------------------
    def train_step(self, batch):
        cfg = self.config
        if cfg.reflow > self.reflow_round and self.step_count >= (self.reflow_round + 1) * cfg.reflow_every:
            self._start_reflow_round()
        n = len(batch)
        y = None
        if self.pairs is not None:  # reflow: the model's own coupling replaces the data batch
            idx = torch.randint(0, len(self.pairs[0]), (n,), generator=self.gen, device=self.device)
            x0, x1 = self.pairs[0][idx], self.pairs[1][idx]
            if self.pairs[2] is not None:
                y = drop_labels(self.pairs[2][idx], cfg.p_uncond, self.gen)
        else:
            x1 = batch
            if cfg.conditional:  # labelled points, a share p_uncond of them with the null label
                x1, y = self.labelled_batch(n)
            x0 = torch.randn(n, 2, generator=self.gen, device=self.device)
            if cfg.coupling == "ot":
                x0 = ot_coupling(x0, x1)
        t = self.sample_t(n)
        x_t = (1 - t[:, None]) * x0 + t[:, None] * x1
        if cfg.sigma > 0:
            x_t = x_t + cfg.sigma * torch.randn(n, 2, generator=self.gen, device=self.device)
        if self.pairs is None and cfg.coupling == "independent" and cfg.target == "stable":
            ref, same_class = reference_batch(self, y)
            u_t = stable_target(x_t, t, x1, ref, cfg.sigma, same_class)
        else:  # the pairs of OT or reflow are not independent: only their own velocity is known
            u_t = x1 - x0  # the conditional velocity of the straight path
        net = self.net["model"]  # labels y (None when unconditional) go to the network as they are
        loss = (net(x_t, TIME_SCALE * t, y) - u_t).pow(2).sum(1).mean()
        warmup_ema_step(self, loss)
        return {"loss": float(loss.detach())}

    def sample_t(self, n: int) -> torch.Tensor:
        """Training times t [n]. Any density with full support on [0, 1] has the same minimiser v(x, t)
        (the loss is a conditional expectation at every t); it only moves the network's effort along t."""
        kind = self.config.t_sampling
        if kind == "logit-normal":
            return torch.sigmoid(torch.randn(n, generator=self.gen, device=self.device))
        u = torch.rand(n, generator=self.gen, device=self.device)
        return 1 - (1 - u) ** 2 if kind == "late" else u

    @torch.no_grad()
    def _start_reflow_round(self) -> None:
        """Replace the coupling by the model's own: x0 ~ N(0, I), x1 = ODE(x0) with a fine RK4."""
        g = torch.Generator(device=self.device).manual_seed(self.seed + 7919 * (self.reflow_round + 1))
        x0 = torch.randn(self.config.reflow_pairs, 2, generator=g, device=self.device)
        labels = self.draw_labels(len(x0), g)  # a conditional flow's pairs keep their class (unguided)
        x1 = self.integrate(x0, "rk4", max(self.config.steps, 25), labels=labels, guidance=0.0)
        self.pairs = (x0, x1, labels)
        self.reflow_round += 1

    # -- sampling and density ------------------------------------------------------------------------
    @torch.no_grad()
    def integrate(
        self,
        x0: torch.Tensor,
        method: str | None = None,
        steps: int | None = None,
        record: bool = False,
        labels: torch.Tensor | None = None,
        guidance: float | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Noise x0 [n, 2] at t = 0 -> x1 at t = 1 by the solver (the config's when None); with record also
        the path [x0, ..., x1]. labels [n]: each particle's class (conditional models), guided by `guidance`."""
        method = method or self.config.sampler
        steps = steps or self.config.steps

        def f(t: float, x: torch.Tensor) -> torch.Tensor:
            return (
                self.velocity(x, t)
                if labels is None
                else self.velocity(x, t, labels=labels, guidance=guidance)
            )

        x1, path = odeint(f, x0, 0.0, 1.0, steps, method, record)
        return (x1, path) if record else x1

    def _sample_z(self, n, generator):
        labels = self.draw_labels(n, generator)
        return self.integrate(torch.randn(n, 2, generator=generator, device=self.device), labels=labels)

    def _sample_labels(self, labels: torch.Tensor, w: float, generator) -> torch.Tensor:
        x0 = torch.randn(len(labels), 2, generator=generator, device=self.device)
        return self.integrate(x0, labels=labels, guidance=w)

    def sample_with(self, n: int, sampler: str, steps: int, generator=None) -> torch.Tensor:
        """n samples [n, 2] in data coordinates from a chosen solver and number of steps."""
        if generator is None or isinstance(generator, int):
            generator = torch.Generator(device=self.device).manual_seed(
                self.seed if generator is None else generator
            )
        labels = self.draw_labels(int(n), generator)
        x0 = torch.randn(int(n), 2, generator=generator, device=self.device)
        return self.scaler.to_x(self.integrate(x0, sampler, steps, labels=labels).float().cpu())

    def log_prob_z(
        self,
        z: torch.Tensor,
        method: str | None = None,
        steps: int | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """log p_1(z) [n] in standardised coordinates by the backward ODE of (x_t, int_t^1 div v ds).

        The augmented state (x, a) with dx/dt = v(x, t), da/dt = div v(x, t), a(1) = 0 runs from t = 1 to t = 0;
        then a(0) = -int_0^1 div v dt and log p_1(z) = log N(x(0); 0, I) + a(0).
        A conditional model: with `labels` the guided flow's log p_w(z | c); without, what sample() draws,
        the mixture log sum_c P(c) p_w(z | c) (one backward ODE per class)."""
        method = method or self.config.sampler
        steps = steps or self.config.density_steps
        if self.config.conditional and labels is None and self.n_classes:
            prior = self.net.class_counts / self.net.class_counts.sum()
            per_class = [
                prior[c].log() + self.log_prob_z(z, method, steps, torch.full_like(z[:, 0], c).long())
                for c in range(self.n_classes)
                if prior[c] > 0
            ]
            return torch.logsumexp(torch.stack(per_class), 0)

        def f(t: float, s: torch.Tensor) -> torch.Tensor:
            v, div = self.velocity_and_divergence(s[:, :2], t, labels=labels)
            return torch.cat([v, div[:, None]], 1)

        state = torch.cat([z, torch.zeros(len(z), 1, device=z.device, dtype=z.dtype)], 1)
        s0, _ = odeint(f, state, 1.0, 0.0, steps, method)
        x0, a0 = s0[:, :2], s0[:, 2]
        log_n = -0.5 * x0.pow(2).sum(1) - math.log(2 * math.pi)
        return log_n + a0

    def _log_prob_z(self, z):
        return self.log_prob_z(z)

    def display_log_prob(self, x: np.ndarray) -> torch.Tensor:
        """The live heatmap: the same backward ODE with at most 8 midpoint steps (16 network calls)."""
        z = self.to_z(x)
        out = [
            self.log_prob_z(c, "midpoint", min(self.config.density_steps, 8)).cpu()
            for c in torch.split(z, 8192)
        ]
        return torch.cat(out) + self.scaler.log_det

    # -- views ----------------------------------------------------------------------------------------
    @torch.no_grad()
    def straightness(self, x0: torch.Tensor, steps: int = 100) -> float:
        """Normalised path energy S = E int_0^1 |v(x_t, t)|^2 dt / E |x1 - x0|^2 - 1 >= 0 (Liu et al. 2023's
        straightness, normalised; 0 exactly when every path is a straight line at constant speed)."""
        _, path = odeint(lambda t, x: self.velocity(x, t), x0, 0.0, 1.0, steps, "euler", record=True)
        p = torch.stack(path)  # [steps + 1, n, 2]
        energy = ((p[1:] - p[:-1]) * steps).pow(2).sum(-1).mean(0)  # int |dx/dt|^2 dt per particle [n]
        chord = (p[-1] - p[0]).pow(2).sum(-1)  # |x1 - x0|^2 [n]
        return float(energy.mean() / chord.mean().clamp_min(1e-12) - 1.0)

    def views(self, n_particles: int = 64, grid: int = 20, **kw) -> dict:
        """The velocity field at several t, particle paths from noise to data, and their straightness (in x)."""
        g = torch.Generator(device=self.device).manual_seed(self.seed + 4242)
        x0 = torch.randn(n_particles, 2, generator=g, device=self.device)
        labels = self.draw_labels(n_particles, g)
        steps = min(self.config.steps, 50)

        def paths() -> dict:
            _, path = self.integrate(x0, steps=steps, record=True, labels=labels)
            return {
                "paths": np.stack([self.to_x(p) for p in path], 1),  # [particles, steps + 1, 2]
                "time": np.linspace(0.0, 1.0, len(path)),
                "straightness": self.straightness(x0, 50),
            }

        return {
            "kind": "fm",
            "trajectories": throttled(self, f"paths{n_particles}", paths),
            "velocity_field": throttled(self, f"field{grid}", lambda: self._velocity_field(grid)),
            # ~200 network calls: at most every 30 s, so it costs a few % of a live run's time
            "steps_quality": throttled(self, "steps_quality", self.steps_quality, every=30.0),
            "reflow_round": int(self.reflow_round),
            "guidance": self.guidance_views(),
        }

    @torch.no_grad()
    def steps_quality(self, steps=(1, 2, 4, 8, 16), n: int = 256) -> dict:
        """Energy distance of n samples (data coordinates) to n training points for each solver and number of
        steps, from the same noise, with the floor of two halves of the training points beside it."""
        g = torch.Generator(device=self.device).manual_seed(self.seed + 99)
        x0 = torch.randn(n, 2, generator=g, device=self.device)
        labels = self.draw_labels(n, g)
        ref = self.to_x(self.train_z[:n])
        out: dict = {
            "steps": list(steps),
            "floor": energy_distance(ref[: n // 2], self.to_x(self.train_z[n : n + n // 2])),
        }
        for method in SOLVERS:
            out[method] = [
                energy_distance(self.to_x(self.integrate(x0, method, k, labels=labels)), ref) for k in steps
            ]
        return out

    @torch.no_grad()
    def _velocity_field(self, size: int) -> dict:
        gx, gy, pts = field_grid(self, size)
        std = torch.as_tensor(self.scaler.std, dtype=torch.float32)
        ts = (0.0, 0.25, 0.5, 0.75, 1.0)
        fields = [
            (self.velocity(pts, t).cpu() * std).reshape(size, size, 2).numpy() for t in ts
        ]  # dx/dt = std dz/dt
        return {
            "x": gx,
            "y": gy,
            "t": np.asarray(ts),
            "labels": [f"t = {t:g}" for t in ts],
            "velocity": np.stack(fields),
        }
