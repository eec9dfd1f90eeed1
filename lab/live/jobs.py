"""Jobs a page (or a sweep) runs on a model inside its worker: the only functions a message can name.

Each takes the run (lab.run.Run) and keyword arguments of plain data, and returns plain data
(numbers, numpy arrays, dataclasses of them), so nothing but arrays crosses back to the page.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


def weights(run) -> bytes:
    """The model as safetensors bytes, taken between training slices (never mid-update)."""
    from lab.base import model_to_bytes

    return model_to_bytes(run.model)


def log_prob(run, x: np.ndarray) -> np.ndarray:
    """log p(x) [n] in data coordinates."""
    return run.model.log_prob(np.asarray(x, dtype=np.float64)).double().numpy()


def marginal_log_prob(run, v: np.ndarray, keep: int, lo: float, hi: float) -> np.ndarray:
    """log p(x_keep = v) with the other coordinate integrated out (lab.classify.marginal_log_prob)."""
    from lab.classify import marginal_log_prob as marginal

    return marginal(run.model, v, keep, lo, hi)


def info(run) -> dict[str, Any]:
    """What a page needs to know about the model without holding it."""
    from lab.inverse import methods_for

    m = run.model
    return {
        "key": m.key,
        "title": m.title,
        "has_log_prob": m.has_log_prob,
        "step": run.step,
        "inverse_methods": methods_for(m),
        "config": m.config,
    }


def inverse(run, dim: int, c: float, truth: dict, method: str, n: int, seed: int, sigma: float, solver=None):
    """One inverse-problem answer and its score (lab.inverse.solve, lab.inverse.score); `solver` is an
    InverseConfig (latent inversion's prior weight)."""
    from lab import inverse as I

    answer = I.solve(run.model, dim, c, truth, method, n=n, seed=seed, sigma=sigma, solver=solver)
    return answer, I.score(answer, truth, dim, c, dataset=run.spec.dataset)


def sampler_sweep(run, reference: np.ndarray, steps: list[int], n: int, seed: int):
    """DDPM against DDIM over numbers of sampling steps (lab.diffusion.sampler_sweep)."""
    from lab.diffusion import sampler_sweep as sweep

    return sweep(run.model, reference, steps=[k for k in steps if k <= run.model.config.T], n=n, seed=seed)


def evaluate(run, n_eval: int = 2000, seed: int = 1000, w2: bool = False, samples: int = 0) -> dict[str, Any]:
    """A sweep member's row: how the run ended and every metric on fresh true points; with `samples` > 0
    also that many of the model's samples [samples, 2] float32 (the GAN page's small multiples)."""
    from lab.metrics import Evaluator

    row: dict[str, Any] = {
        "steps": run.step,
        "train_seconds": run.train_seconds,
        "status": run.status,
        "message": run.message,
        "diverged": run.status == "diverged",
    }
    if run.status != "diverged":
        ds = run.spec.dataset  # a user's points have no truth: the run's held-out points stand in for it
        test = None if ds.has_density else run.test_points
        row["metrics"] = Evaluator(ds, n=n_eval, seed=seed, test_points=test)(run.model, w2=w2)
    if samples > 0:
        row["samples"] = run.model.sample(int(samples), seed + 13).numpy().astype(np.float32)
    return row


JOBS: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (weights, log_prob, marginal_log_prob, info, inverse, sampler_sweep, evaluate)
}
