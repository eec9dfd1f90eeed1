"""Batched members: many seeds of one model and setting trained as one stacked model (torch.func + vmap).

A sweep's members that share a family and a setting differ only in their seed. Here their weights are
stacked along a new leading axis (`torch.func.stack_module_state`) and every step runs all of them at
once (`vmap` over `functional_call`), with one optimiser over the stacked tensors: Adam is elementwise,
so every member keeps its own moments, exactly as in its solo run. Each member is first built as the
solo `lab.run.Run` of its seed (same initial weights, same data draw and split, same generators), and
its trained weights go back into that Run at the end, so a member is evaluated like any other.

Random draws inside a step come from one of two sources (`rng`):

- "member": every member draws from its own solo generators (`model.gen`, the run's `batch_gen`) in
  the solo order, so on the same device a member's trajectory is its solo run's, to float rounding
  (batched matrix products sum in another order). One small draw per member per step: right for the
  CPU and for tests, slow on a GPU with a thousand members.
- "shared": one generator per stream draws every member's numbers in one call [M, ...]. Each member's
  numbers are still i.i.d. N(0, 1) / uniform, independent of the others', so each member follows the same
  law as its solo run (same distribution of trajectories), but not the same path; a member's numbers
  depend on the whole seed list. The GPU default.

Families: `gan` (minimax and non-saturating games, with R1, EMA, packing, k D steps, the lr half-life;
not batch norm, not the WGANs) and `ddpm` (unconditional). `unsupported(key, config)` says why anything
else is not batched; the sweep then trains those members one by one.

Divergence here is a non-finite loss (checked on the device, no sync per step); the solo run's watch of
finite blow-ups and far samples is not applied. A `--seconds` budget is the group's wall time: every
member trains all of it, side by side.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.func import functional_call, stack_module_state, vmap
from torch.nn import functional as F

from lab.diffusion import stable_noise_targets, training_timesteps

RNG_MODES = ("member", "shared")


def unsupported(key: str, config) -> str:
    """ "" when members of `key` with this config can be batched, else one sentence why not."""
    if key == "gan":
        if config.loss not in ("minimax", "nonsaturating"):
            return f"the {config.loss} game is not batched (clipping / penalties per critic); it trains member by member"
        if config.batch_norm:
            return "batch norm is not batched (its running statistics); it trains member by member"
        return ""
    if key == "ddpm":
        if getattr(config, "conditional", False):
            return "a conditional DDPM is not batched; it trains member by member"
        return ""
    return f"{key} has no batched trainer (gan and ddpm do); it trains member by member"


def can_batch(key: str, config) -> bool:
    return not unsupported(key, config)


# ---------------------------------------------------------------------------------------------
# Random draws for M members at once
# ---------------------------------------------------------------------------------------------


class Draws:
    """Draws [M, *shape] for the members, from their own generators ("member") or one shared one ("shared")."""

    def __init__(self, gens: list[torch.Generator], device: torch.device, mode: str, stream: int, seeds):
        self.gens, self.device, self.mode, self.m = gens, device, mode, len(gens)
        if mode == "shared":
            state = np.random.SeedSequence([int(s) for s in seeds] + [stream]).generate_state(1)[0]
            self.shared = torch.Generator(device=device).manual_seed(int(state))

    def _draw(self, fn: Callable, shape: tuple[int, ...]) -> torch.Tensor:
        if self.mode == "shared":
            return fn((self.m, *shape), generator=self.shared, device=self.device)
        return torch.stack([fn(shape, generator=g, device=g.device) for g in self.gens]).to(self.device)

    def randn(self, *shape: int) -> torch.Tensor:
        return self._draw(torch.randn, shape)

    def rand(self, *shape: int) -> torch.Tensor:
        return self._draw(torch.rand, shape)

    def randint(self, high: int, *shape: int) -> torch.Tensor:
        return self._draw(lambda size, **kw: torch.randint(0, high, size, **kw), shape)


def _stack(modules: list[torch.nn.Module], device, grad: bool) -> tuple[torch.nn.Module, dict]:
    """A weightless copy of the module (for functional_call) and its parameters stacked [M, ...] on `device`."""
    params, buffers = stack_module_state(modules)
    if any(b.numel() for b in buffers.values()):
        raise ValueError("modules with buffers are not batched")
    base = copy.deepcopy(modules[0]).to("meta")
    stacked = {k: v.detach().to(device).requires_grad_(grad) for k, v in params.items()}
    return base, stacked


def _unstack(stacked: dict, modules: list[torch.nn.Module]) -> None:
    with torch.no_grad():
        device = next(modules[0].parameters()).device
        host = {k: v.detach().to(device) for k, v in stacked.items()}
        for i, mod in enumerate(modules):
            for name, p in mod.named_parameters():
                p.copy_(host[name][i])


def _call(base: torch.nn.Module, params: dict, *args) -> torch.Tensor:
    """The module on every member: params [M, ...], args [M, ...] -> [M, ...]. A plain stack of Linear layers
    and activations (the GAN's players) is a chain of batched matrix products (baddbmm), which skips
    vmap's per-call overhead (a GPU step is mostly launch overhead); anything else goes through vmap."""
    if isinstance(base, torch.nn.Sequential) and len(args) == 1 and _plain(base):
        x = args[0]
        for name, mod in base.named_children():
            if isinstance(mod, torch.nn.Linear):
                w, b = params[f"{name}.weight"], params[f"{name}.bias"]
                x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
            else:
                x = mod(x)  # an activation: elementwise, no weights
        return x
    return vmap(lambda p, *a: functional_call(base, p, a))(params, *args)


def _plain(seq: torch.nn.Sequential) -> bool:
    return all(
        (isinstance(m, torch.nn.Linear) and m.bias is not None) or not any(True for _ in m.parameters())
        for m in seq.children()
    ) and not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in seq.children())


# ---------------------------------------------------------------------------------------------
# The families' steps, batched: each mirrors the family's own train_step line by line
# ---------------------------------------------------------------------------------------------


class _Group:
    """What every batched family shares: members' runs, their data, the draws, the divergence record."""

    def __init__(self, runs: list, device: str, rng: str):
        if rng not in RNG_MODES:
            raise ValueError(f"rng must be one of {RNG_MODES}, got {rng!r}")
        self.runs, self.models = runs, [r.model for r in runs]
        self.m, self.device, self.config = len(runs), torch.device(device), self.models[0].config
        sizes = {len(mm.train_z) for mm in self.models}
        if len(sizes) != 1:
            raise ValueError("batched members need training sets of one size")
        self.train_z = torch.stack([mm.train_z for mm in self.models]).to(self.device)  # [M, N, 2]
        self.n_train = self.train_z.shape[1]
        seeds = [r.spec.seed for r in runs]
        self.batch_draws = Draws([r.batch_gen for r in runs], self.device, rng, 1, seeds)
        self.draws = Draws([mm.gen for mm in self.models], self.device, rng, 0, seeds)
        self.rows = torch.arange(self.m, device=self.device)[:, None]
        self.first_bad = torch.full((self.m,), -1, dtype=torch.long, device=self.device)
        self.step = 0
        self.losses: list[torch.Tensor] = []  # [M] per step, kept on the device (no sync per step)

    def gather(self, idx: torch.Tensor) -> torch.Tensor:
        """Each member's training points at its own indices: idx [M, n] -> [M, n, 2]."""
        return self.train_z[self.rows, idx]

    def batch(self) -> torch.Tensor:
        """Run.batch for every member: its own indices into its own data."""
        return self.gather(self.batch_draws.randint(self.n_train, min(self.config.batch_size, self.n_train)))

    def note(self, *losses: torch.Tensor) -> None:
        """Record the first step at which a member's loss was not finite (on the device, no sync)."""
        bad = torch.zeros(self.m, dtype=torch.bool, device=self.device)
        for loss in losses:
            bad |= ~torch.isfinite(loss.detach())
        self.first_bad = torch.where(bad & (self.first_bad < 0), self.step, self.first_bad)
        self.losses.append(losses[0].detach())

    def loss_history(self) -> np.ndarray:
        """The first loss of every step (D's for the GAN), [steps, M]."""
        return torch.stack(self.losses).cpu().numpy() if self.losses else np.zeros((0, self.m))

    def train_step(self) -> None:
        self._step(self.batch())
        self.step += 1

    def _step(self, batch: torch.Tensor) -> None:
        raise NotImplementedError

    def write_back(self) -> None:
        raise NotImplementedError


class BatchedGAN(_Group):
    """lab.gan.GAN.train_step for M members: k D steps (R1 on real packs), one G step, the EMA of G."""

    def __init__(self, runs: list, device: str = "cpu", rng: str = "member"):
        super().__init__(runs, device, rng)
        cfg = self.config
        self.G_base, self.G = _stack([mm.net["G"] for mm in self.models], self.device, True)
        self.D_base, self.D = _stack([mm.net["D"] for mm in self.models], self.device, True)
        self.E = None
        if "G_ema" in self.models[0].net:
            _, self.E = _stack([mm.net["G_ema"] for mm in self.models], self.device, False)
        kw = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2), "fused": True}  # as the solo runs
        self.opt_g = torch.optim.Adam(list(self.G.values()), **kw)
        self.opt_d = torch.optim.Adam(list(self.D.values()), **kw)
        self.steps_done = self.models[0].steps_done

    def _pack(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.m, -1, 2 * self.config.pack)  # [M, n, 2] -> [M, n / m, 2m]

    def _d(self, x: torch.Tensor) -> torch.Tensor:
        return _call(self.D_base, self.D, self._pack(x)).squeeze(-1)

    def _step(self, batch: torch.Tensor) -> None:
        cfg = self.config
        m = cfg.pack
        n = max(m, batch.shape[1] // m * m)
        real = batch[:, :n] if batch.shape[1] >= n else self.gather(self.draws.randint(self.n_train, n))
        if cfg.lr_half_life > 0:
            lr = cfg.lr * 0.5 ** (self.steps_done / cfg.lr_half_life)
            for opt in (self.opt_g, self.opt_d):
                for g in opt.param_groups:
                    g["lr"] = lr
        for i in range(cfg.d_steps):
            if i > 0:
                real = self.gather(self.draws.randint(self.n_train, n))
            with torch.no_grad():
                fake = _call(self.G_base, self.G, self.draws.randn(n, cfg.latent_dim))
            if cfg.r1_gamma > 0:
                packs = self._pack(real).detach().requires_grad_(True)
                d_real = _call(self.D_base, self.D, packs).squeeze(-1)
                # members are independent, so the gradient of the sum is each member's own
                (grad,) = torch.autograd.grad(d_real.sum(), packs, create_graph=True)
                r1 = grad.pow(2).sum(-1).mean(-1)  # [M]
            else:
                d_real = self._d(real)
            d_fake = self._d(fake)
            loss_d = F.softplus(-d_real).mean(-1) + F.softplus(d_fake).mean(-1)
            if cfg.r1_gamma > 0:
                loss_d = loss_d + 0.5 * cfg.r1_gamma * r1
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.sum().backward()
            self.opt_d.step()
        fake = _call(self.G_base, self.G, self.draws.randn(n, cfg.latent_dim))
        d_fake = self._d(fake)
        per_pack = -F.softplus(d_fake) if cfg.loss == "minimax" else F.softplus(-d_fake)
        loss_g = per_pack.mean(-1)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.sum().backward()
        self.opt_g.step()
        if self.E is not None:
            with torch.no_grad():
                torch._foreach_lerp_(list(self.E.values()), [self.G[k] for k in self.E], 1.0 - cfg.ema)
        self.steps_done += 1
        self.note(loss_d, loss_g)

    def write_back(self) -> None:
        _unstack(self.G, [mm.net["G"] for mm in self.models])
        _unstack(self.D, [mm.net["D"] for mm in self.models])
        if self.E is not None:
            _unstack(self.E, [mm.net["G_ema"] for mm in self.models])
        for mm in self.models:
            mm.steps_done = self.steps_done

    @torch.no_grad()
    def sample_z(self, n: int, draws: Draws) -> torch.Tensor:
        """Every member's samples in standardised coordinates [M, n, 2] (G_ema when there is one)."""
        params = self.E if self.E is not None else self.G
        return _call(self.G_base, params, draws.randn(n, self.config.latent_dim))


class BatchedDDPM(_Group):
    """lab.diffusion.DDPM.train_step for M members: L_simple (eps or v), warm-up, the ramped EMA."""

    def __init__(self, runs: list, device: str = "cpu", rng: str = "member"):
        super().__init__(runs, device, rng)
        cfg = self.config
        self.base, self.net = _stack([mm.net["model"] for mm in self.models], self.device, True)
        _, self.ema = _stack([mm.net["ema"] for mm in self.models], self.device, False)
        self.opt = torch.optim.Adam(list(self.net.values()), lr=cfg.lr, fused=True)  # as the solo runs
        ab = self.models[0].alphas_cumprod.to(self.device)
        self.alpha_bar = torch.cat([torch.ones(1, dtype=ab.dtype, device=self.device), ab])  # t = -1: data
        self.step_count = self.models[0].step_count

    def _step(self, batch: torch.Tensor) -> None:
        cfg = self.config
        n = batch.shape[1]
        t = training_timesteps(self.draws.rand(n), cfg.T, cfg.t_power)  # [M, n]
        eps = self.draws.randn(n, 2)
        ab = self.alpha_bar[t + 1].float()[..., None]  # [M, n, 1]
        x_t = ab.sqrt() * batch + (1 - ab).sqrt() * eps
        x0 = batch
        if cfg.target == "stable":  # DDPM.train_step: each member's own reference batch, drawn after eps
            ref = self.gather(self.draws.randint(self.n_train, cfg.reference))
            x0, eps = stable_noise_targets(x_t, ab[..., 0], batch, ref)
        out = _call(self.base, self.net, x_t, t.float())
        target = eps if cfg.prediction == "eps" else ab.sqrt() * eps - (1 - ab).sqrt() * x0
        loss = ((out - target) ** 2).sum(-1).mean(-1)  # [M]
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr * min(1.0, (self.step_count + 1) / max(cfg.warmup, 1))
        self.opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        self.opt.step()
        self.step_count += 1
        if cfg.ema_decay > 0:
            decay = min(cfg.ema_decay, (1 + self.step_count) / (10 + self.step_count))
            with torch.no_grad():
                torch._foreach_lerp_(list(self.ema.values()), [self.net[k] for k in self.ema], 1.0 - decay)
        self.note(loss)

    def write_back(self) -> None:
        _unstack(self.net, [mm.net["model"] for mm in self.models])
        _unstack(self.ema, [mm.net["ema"] for mm in self.models])
        for mm in self.models:
            mm.step_count = self.step_count


BATCHED: dict[str, type[_Group]] = {"gan": BatchedGAN, "ddpm": BatchedDDPM}


def make_group(runs: list, device: str = "cpu", rng: str = "member") -> _Group:
    """The batched trainer of these runs (one family, one setting, any seeds)."""
    key, config = runs[0].spec.key, runs[0].model.config
    why = unsupported(key, config)
    if why:
        raise ValueError(why)
    if any(r.spec.key != key or r.model.config != config for r in runs):
        raise ValueError("batched members must share their model and setting")
    return BATCHED[key](runs, device, rng)


# ---------------------------------------------------------------------------------------------
# Training a group of specs to their budget
# ---------------------------------------------------------------------------------------------


def train_group(
    specs: list,
    device: str = "cpu",
    rng: str | None = None,
    progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    check_every: int = 50,
    keep: list | None = None,
) -> list:
    """Build every spec's solo Run (on the CPU), train them together on `device` to their budget (the specs'
    max_steps, else max_seconds of the group's wall time), and hand each Run back finished, its trained
    weights in its model, ready for lab.live.jobs.evaluate. `rng` defaults to "member" on the CPU and
    "shared" on a GPU. `progress(fraction)` is told every `check_every` steps; `keep` (a list) receives the
    group, for its loss history."""
    from lab.run import DIVERGED, DONE, Run

    dev = torch.device(device)
    rng = rng or ("member" if dev.type == "cpu" else "shared")
    runs = []
    for s in specs:
        solo = copy.copy(s)
        solo.device = "cpu"  # built (and later evaluated) on the CPU: the same model as a solo run
        runs.append(Run(solo))
    group = make_group(runs, device, rng)
    max_steps, max_seconds = specs[0].max_steps, specs[0].max_seconds
    t0 = time.perf_counter()
    while True:
        if max_steps is not None and group.step >= max_steps:
            break
        elapsed = time.perf_counter() - t0
        if max_seconds is not None and elapsed >= max_seconds:
            break
        group.train_step()
        if group.step % check_every == 0:
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)  # the wall clock must see the work, not its launch
            if progress is not None:
                progress(_fraction(group.step, max_steps, time.perf_counter() - t0, max_seconds))
            if should_stop is not None and should_stop():
                break
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    wall = time.perf_counter() - t0
    together = f"batched with {group.m} member{'s' if group.m != 1 else ''}"
    group.write_back()
    if keep is not None:
        keep.append(group)
    first_bad = group.first_bad.cpu().tolist()
    for r, bad in zip(runs, first_bad):
        r.step = group.step
        r.train_seconds = wall  # every member trained all of the group's time, side by side
        if bad >= 0:
            r.status = DIVERGED
            r.message = f"diverged at step {bad + 1}: a loss was not finite ({together})"
        else:
            r.status = "running"
            r.finish(DONE, f"budget used: {group.step} steps in {wall:.1f} s, {together}")
    return runs


def _fraction(step: int, max_steps: int | None, elapsed: float, max_seconds: float | None) -> float:
    fr = [0.0]
    if max_steps:
        fr.append(step / max_steps)
    if max_seconds:
        fr.append(elapsed / max_seconds)
    return float(min(1.0, max(fr)))
