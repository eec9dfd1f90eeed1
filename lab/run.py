"""One model under a budget: early stopping on a validation split, divergence; the CLI, the bench and the workers drive it."""

from __future__ import annotations

import copy
import math
import time
from typing import Callable

import numpy as np
import torch

from lab.base import GenerativeModel, get_model_class, make_model
from lab.data import PointsDataset, refuse_incomplete
from lab.snapshot import DIVERGED, DONE, PAUSED, READY, RUNNING, STOPPED  # noqa: F401  (statuses, shared with pages)
from lab.spec import RunSpec  # noqa: F401  (the CLI and benches import it from here)

# ---------------------------------------------------------------------------------------------
# Bounded history: keeps the whole span of a long run at decreasing resolution.
# ---------------------------------------------------------------------------------------------


class History:
    """(step, {name: value}) records; when full, every other old record is dropped (memory stays bounded)."""

    def __init__(self, maxlen: int = 1000):
        self.maxlen = maxlen
        self.records: list[tuple[int, dict[str, float]]] = []
        self.stride = 1  # keep one record in `stride` once thinned
        self._count = 0

    def add(self, step: int, values: dict[str, float]) -> None:
        self._count += 1
        if self._count % self.stride:
            return
        self.records.append((step, dict(values)))
        if len(self.records) >= self.maxlen:
            self.records = self.records[::2]
            self.stride *= 2

    def arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """name -> (steps, values), for plotting."""
        names: dict[str, None] = {}
        for _, v in self.records:
            names.update(dict.fromkeys(v))
        out = {}
        for name in names:
            pts = [(s, v[name]) for s, v in self.records if name in v and v[name] is not None]
            out[name] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts], dtype=float))
        return out

    def last(self) -> dict[str, float]:
        return dict(self.records[-1][1]) if self.records else {}

    def __len__(self) -> int:
        return len(self.records)


# ---------------------------------------------------------------------------------------------
# Divergence that stays finite: a loss that leaves its scale, samples far from the data.
# ---------------------------------------------------------------------------------------------


class BlowUpWatch:
    """Flags a run whose numbers blew up while staying finite (a NaN is caught on its own).

    Losses: each loss's scale is the smallest |value| it has had, floored at 1 (a loss near 0 may grow
    to a few units and be healthy). A loss blew up when its |value| stays above `factor` x that scale for
    `patience` steps in a row: at lr = 1 a VAE's loss goes from 2.9 to 1e21 in one step and stays at
    1e31, an AE's from 2 to 1e5-1e20, while healthy losses of every family (GAN games included, which
    oscillate) stay within a few times their scale. A lone spike is forgiven.

    Samples: a model whose loss looks fine can still send its samples far away (a score model at lr = 1
    whose network died: loss back at 0.95, samples 1e13 away). From step `warmup` on, every so often the
    run draws `n_samples` points and measures how far from the data's centre their 90th percentile
    lies, in the data's own standard deviations (the data: about 2); beyond `max_sample_radius` at two
    checks in a row the samples say nothing about the data. Beyond `huge_sample_radius` one check is
    enough: a score model at lr = 1 sends its samples 1e7-1e22 away at its first check, then its network
    dies and they come back to ~22, where an untrained model's Langevin chain also puts them (healthy
    untrained models of every family stay below ~25).
    """

    def __init__(
        self,
        warmup: int = 10,
        factor: float = 1e4,
        patience: int = 20,
        max_sample_radius: float = 100.0,
        huge_sample_radius: float = 1e4,
        n_samples: int = 256,
    ):
        self.warmup, self.factor, self.patience = warmup, factor, patience
        self.max_sample_radius, self.n_samples = max_sample_radius, n_samples
        self.huge_sample_radius = huge_sample_radius
        self.scale: dict[str, float] = {}  # the smallest |value| of each loss so far
        self.over: dict[str, int] = {}  # steps in a row above the threshold, per loss
        # training seconds at which samples are next checked: not in a run's first moments, which are its first
        # steps (a crowded worker trains every newcomer's first 20 before anything else; a diffusion chain's
        # 256 samples there cost as much as those steps)
        self.next_sample_time = 0.5
        self.far_checks = 0  # sample checks in a row that found the samples far away
        self.last_radius = math.nan  # the 90th percentile of the samples' distances at the last check

    def losses(self, step: int, losses: dict[str, float]) -> str | None:
        """A sentence when a loss has blown up at this step, else None."""
        for k, v in losses.items():
            low = self.scale[k] = min(self.scale.get(k, math.inf), abs(v))
            if abs(v) > self.factor * max(low, 1.0):
                self.over[k] = self.over.get(k, 0) + 1
                if self.over[k] >= self.patience:
                    return f"diverged at step {step}: {k} rose from {low:.3g} to {v:.3g}"
            else:
                self.over[k] = 0
        return None

    def samples(self, step: int, model: GenerativeModel, data_radius: float) -> str | None:
        """A sentence when the model's samples lie far from the data, else None."""
        z = model.to_z(model.sample(self.n_samples, torch.Generator().manual_seed(12345))).cpu().double()
        r = z.norm(dim=1)
        r = torch.where(torch.isfinite(r), r, torch.full_like(r, math.inf))
        self.last_radius = radius = float(
            r.sort().values[int(0.9 * (len(r) - 1))]
        )  # (inf - inf would be nan)
        # two checks in a row, so one bad moment a run recovers from is forgiven
        self.far_checks = self.far_checks + 1 if radius > self.max_sample_radius else 0
        if self.far_checks < 2 and radius <= self.huge_sample_radius:
            return None
        if not math.isfinite(radius):
            return f"diverged at step {step}: more than a tenth of the samples are not finite numbers"
        return (
            f"diverged at step {step}: a tenth of the samples lie {radius:.3g} standard deviations or more "
            f"from the data's centre (the data's: {data_radius:.2g})"
        )


# ---------------------------------------------------------------------------------------------
# A Run: one model, its data split, budget, early stopping and divergence check.
# ---------------------------------------------------------------------------------------------


class Run:
    """Trains one model. The CLI, the bench and the trainer workers all drive it through `advance`."""

    def __init__(self, spec: RunSpec):
        self.spec = spec
        ds = spec.dataset
        n = len(ds.points) if isinstance(ds, PointsDataset) else spec.n_train
        labels = None
        # class-conditional fm / ddpm: the same points, labelled (`is True`: the autoregressive family's
        # `conditional` is its 1D conditional's kind, "mog" or "softmax", which is truthy)
        if getattr(spec.config, "conditional", False) is True:
            from lab.guidance import sample_labelled

            pts, labels, _ = sample_labelled(ds, n, spec.seed)
        else:
            pts = ds.sample(n, spec.seed)  # for a PointsDataset, a seeded shuffle of the user's points
        # held-out split: early stopping (explicit densities) and honest test numbers on user points
        n_val = int(len(pts) * spec.val_fraction) if spec.val_fraction > 0 and len(pts) >= 20 else 0
        self.val_x = pts[:n_val]
        # rows with a missing coordinate (NaN) train only the families that can marginalise it
        self.train_x, self.incomplete_x = ds.incomplete_rows(pts[n_val:], spec.seed)
        if len(self.incomplete_x) and not get_model_class(spec.key).learns_from_incomplete:
            refuse_incomplete(ds, spec.key, len(self.incomplete_x))
        self.model: GenerativeModel = make_model(
            spec.key,
            np.concatenate([self.train_x, self.incomplete_x]),
            spec.config,
            seed=spec.seed,
            device=spec.device,
        )
        if labels is not None:
            self.model.set_labels(labels[n_val:])
        cls = get_model_class(spec.key)
        self.has_val = n_val > 0 and cls.has_log_prob and cls.early_stopping
        self.batch_gen = torch.Generator(device=self.model.device).manual_seed(spec.seed + 1)
        self.step = 0
        self.train_seconds = 0.0
        self.status = READY
        self.message = ""
        self.losses = History(1000)
        self.metrics = History(300)
        self.best_val = math.inf
        self.best_step = 0
        self._best_weights: dict[str, torch.Tensor] | None = None
        self._bad_evals = 0
        # as the sample checks: a run's first steps train (a short run validates at its end)
        self._next_val_time = 0.5
        self.patience = 12  # validation checks without improvement before stopping
        self.blow_up = BlowUpWatch()
        self._data_radius = float(self.model.train_z.double().norm(dim=1).nanquantile(0.9))
        self._yardstick = self._diagonal_gaussian_nll() if self.has_val else math.nan
        self._far_vals = 0  # validations in a row far worse than the yardstick (FAR_CHECKS: blown up)

    # -- budget ----------------------------------------------------------------------------------
    @property
    def progress(self) -> float:
        """Fraction of the budget used, in [0, 1]."""
        fr = [0.0]
        if self.spec.max_steps:
            fr.append(self.step / self.spec.max_steps)
        if self.spec.max_seconds:
            fr.append(self.train_seconds / self.spec.max_seconds)
        if self.status in (DONE,):
            return 1.0
        return float(min(1.0, max(fr)))

    def budget_left(self) -> bool:
        if self.spec.max_steps is not None and self.step >= self.spec.max_steps:
            return False
        if self.spec.max_seconds is not None and self.train_seconds >= self.spec.max_seconds:
            return False
        return True

    @property
    def finished(self) -> bool:
        return self.status in (DONE, DIVERGED, STOPPED)

    # -- one step ----------------------------------------------------------------------------------
    def batch(self) -> torch.Tensor:
        z = self.model.train_z
        idx = torch.randint(
            0, len(z), (min(self.model.config.batch_size, len(z)),), generator=self.batch_gen, device=z.device
        )
        return z[idx]

    def advance(self, n: int = 1) -> None:
        """Up to n training steps; marks the run done/diverged when the budget ends or a loss blows up."""
        for _ in range(n):
            if self.finished:
                return
            if not self.budget_left() or self.model.converged:
                self.finish(DONE)
                return
            t0 = time.perf_counter()
            losses = self.model.train_step(self.batch())
            self.train_seconds += time.perf_counter() - t0
            self.step += 1
            bad = [k for k, v in losses.items() if not math.isfinite(v)]
            self.losses.add(self.step, losses)
            why = (
                f"diverged at step {self.step}: {bad[0]} was {losses[bad[0]]}"
                if bad
                else self.blow_up.losses(self.step, losses)
            )
            if (
                why is None
                and self.step > self.blow_up.warmup
                and self.train_seconds >= self.blow_up.next_sample_time
            ):
                why = self._check_samples()
            if (
                why is None
                and self.has_val
                and self.spec.early_stopping
                and self.train_seconds >= self._next_val_time
            ):
                why = self._validate()
            if why is not None:
                self.status, self.message = DIVERGED, why
                return

    def _check_samples(self) -> str | None:
        """The blow-up watch's look at the samples, at most ~2 % of the training time."""
        t0 = time.perf_counter()
        why = self.blow_up.samples(self.step, self.model, self._data_radius)
        cost = time.perf_counter() - t0
        self.blow_up.next_sample_time = self.train_seconds + max(0.5, 50 * cost)
        if cost > 0.02 and self.blow_up.n_samples > 32:  # a slow sampler (a diffusion chain): no long stall
            self.blow_up.n_samples //= 2
        return why

    # A held-out NLL this many nats above the yardstick's, at three validations in a row, is a blown-up model:
    # e^-10 of the likelihood of a Gaussian that knows only the data's mean and spread. An untrained model is
    # near the yardstick (a flow starts as the identity on standardised data); a flow at lr = 1 stays 16-39
    # above, while an AR at lr = 1 jumps 100 above for one check and comes back (three forgive it).
    FAR_ABOVE_YARDSTICK = 10.0
    FAR_CHECKS = 3

    def _diagonal_gaussian_nll(self) -> float:
        """Held-out NLL of N(0, I) in the model's standardised coordinates (a Gaussian with the training data's
        mean and per-axis spread), in data units like `log_prob`: the yardstick an untrained model is near."""
        z = self.model.scaler.to_z(torch.as_tensor(np.asarray(self.val_x), dtype=torch.float64))
        z = z[torch.isfinite(z).all(1)]
        if not len(z):
            return math.nan
        return float(0.5 * (z**2).sum(1).mean()) + math.log(2 * math.pi) - self.model.scaler.log_det

    def _validate(self, final: bool = False) -> str | None:
        """Held-out NLL; keep the best weights; stop after `patience` checks without improvement. A sentence
        when the model is far worse than the yardstick at three checks in a row: it has blown up (its loss may
        look tame)."""
        t0 = time.perf_counter()
        val = float(-self.model.validation_log_prob(self.val_x).double().mean())
        if not math.isfinite(val):
            val = math.inf
        self.metrics.add(self.step, {"val_nll": val})
        self._far_vals = self._far_vals + 1 if val > self._yardstick + self.FAR_ABOVE_YARDSTICK else 0
        if self._far_vals >= self.FAR_CHECKS and not final:
            return (
                f"diverged at step {self.step}: its held-out NLL ({val:.3g}) is {val - self._yardstick:.3g} nats "
                f"worse than a Gaussian with the data's mean and spread ({self._yardstick:.3g})"
            )
        if val < self.best_val - 1e-4:
            self.best_val, self.best_step, self._bad_evals = val, self.step, 0
            self._best_weights = copy.deepcopy(self.model.weights())
        else:
            self._bad_evals += 1
        cost = time.perf_counter() - t0
        # check about every 2 % of the budget, at most 5 % of the time on validation
        every = max(0.25, 20 * cost, 0.02 * (self.spec.max_seconds or 15.0))
        self._next_val_time = self.train_seconds + every
        if self._bad_evals >= self.patience and not final:
            self.finish(
                DONE,
                f"early stopped at step {self.step}: best validation NLL {self.best_val:.3f} at step {self.best_step}",
            )

    def finish(self, status: str, message: str = "") -> None:
        if self.finished:
            return
        if self.has_val and self.spec.early_stopping and status == DONE and self.best_step != self.step:
            self._validate(final=True)  # the last weights compete too
        if self._best_weights is not None and status == DONE:
            if self.best_step != self.step:
                self.model.load_weights(self._best_weights)  # early stopping: the best validated weights
                message = (
                    message
                    or f"restored the weights of step {self.best_step} (best validation NLL {self.best_val:.3f})"
                )
        if status == DONE and self.spec.refit and len(self.val_x) and hasattr(self.model, "refit"):
            self.model.refit(self.val_x)
        self.status = status
        if not message and status == DONE:
            if self.model.converged:
                message = f"converged at step {self.step}"
            else:
                message = f"budget used: {self.step} steps in {self.train_seconds:.1f} s"
        self.message = message

    def set_lr(self, lr: float) -> None:
        self.model.set_lr(lr)

    @property
    def test_points(self) -> np.ndarray:
        """Held-out points for metrics on user data (the training points when too few to split)."""
        return self.val_x if len(self.val_x) >= 4 else self.train_x

    @property
    def steps_per_second(self) -> float:
        return self.step / self.train_seconds if self.train_seconds > 0 else 0.0


def fit(spec: RunSpec, progress: Callable[[Run], None] | None = None, chunk: int = 25) -> Run:
    """Train a run to its budget in the calling thread (CLI, bench, tests)."""
    run = Run(spec)
    run.status = RUNNING
    while not run.finished:
        run.advance(chunk)
        if progress is not None:
            progress(run)
    return run
