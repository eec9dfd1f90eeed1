"""The typed Snapshot a page draws from: one run's state and pictures as plain numpy arrays."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

# statuses of a run, as a page shows them
BUILDING, READY, RUNNING, PAUSED = "building", "ready", "running", "paused"
DONE, DIVERGED, STOPPED, ERROR = "done", "diverged", "stopped", "error"
FINISHED = (DONE, DIVERGED, STOPPED, ERROR)


class DensityGrid(TypedDict):
    """log p on a regular grid in data coordinates: log_prob[i, j] is at (x[j], y[i])."""

    x: np.ndarray  # [size]
    y: np.ndarray  # [size]
    log_prob: np.ndarray  # [size, size]


Series = tuple[np.ndarray, np.ndarray]  # (steps, values) of one loss or metric over training


@dataclass(frozen=True)
class Snapshot:
    """What a page draws for one run. Made in a trainer worker, sent to the page process as numpy
    arrays (pickled over a pipe), read by attribute. Every number and point is in data coordinates.

    `time` says when the samples were drawn and `views_time` when the family's own pictures were:
    pages rebuild a figure only when the time of what it shows changes.
    """

    run_id: str
    key: str  # the family ("flow")
    title: str  # the family's human name ("Normalizing flow")
    status: str = BUILDING  # one of the statuses above
    message: str = ""  # the sentence a page shows for a finished, diverged or failed run
    step: int = 0
    train_seconds: float = 0.0
    steps_per_second: float = 0.0  # of training time (of wall time for a slowed run)
    progress: float = 0.0  # fraction of the budget used, in [0, 1]
    wall_seconds: float = 0.0  # wall time the run has been running (a wall-clock budget counts it)
    lr: float | None = None
    samples: np.ndarray | None = None  # [n, 2] float32
    density: DensityGrid | None = None  # None for a family without a density (AE, GAN)
    views: dict[str, Any] = field(default_factory=dict)  # the family's own pictures (GenerativeModel.views)
    views_time: float = 0.0
    losses: dict[str, Series] = field(default_factory=dict)
    metrics: dict[str, Series] = field(default_factory=dict)
    latest_metrics: dict[str, float] = field(default_factory=dict)  # the last value of every metric
    sample_seconds_per_1000: float | None = None  # sampling time, from full-size draws
    time: float = 0.0  # wall clock (time.time()) when the samples were drawn

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def with_status(self, status: str, message: str | None = None) -> "Snapshot":
        """The same picture under a new status (a page says 'paused' before the trainer has answered)."""
        return dataclasses.replace(self, status=status, message=self.message if message is None else message)


def placeholder(run_id: str, key: str, status: str = BUILDING, message: str = "") -> Snapshot:
    """A run with no picture yet (building, or failed to build)."""
    return Snapshot(run_id=run_id, key=key, title=key, status=status, message=message, time=time.time())


SUMMARY_COLUMNS = [
    "model",
    "status",
    "step",
    "steps/s",
    "test NLL",
    "KL to truth",
    "energy distance",
    "ED floor",
    "blur gap",
    "modes",
    "high quality",
    "ms / 1000 samples",
    "progress",
]


def snapshot_summary(label: str, snap: Snapshot | None) -> dict:
    """One scoreboard row from a snapshot (numbers as numbers, None where a metric does not apply)."""
    m = snap.latest_metrics if snap else {}
    modes = f"{m['modes']}/{m['n_modes']}" if "modes" in m else None
    t = snap.sample_seconds_per_1000 if snap else None
    return {
        "model": label,
        "status": snap.status if snap else BUILDING,
        "step": snap.step if snap else 0,
        "steps/s": round(snap.steps_per_second, 1) if snap else 0.0,
        "test NLL": m.get("test_nll"),
        "KL to truth": m.get("kl_to_truth"),
        "energy distance": m.get("energy_distance"),
        "ED floor": m.get("energy_distance_floor"),
        "blur gap": m.get("blur_gap"),
        "modes": modes,
        "high quality": m.get("high_quality"),
        "ms / 1000 samples": None if t is None else 1000 * t,
        "progress": snap.progress if snap else 0.0,
    }
