"""RunSpec: everything needed to (re)build a run; light to import (the page process needs no torch for it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lab.base import Config
    from lab.data import Dataset


@dataclass
class RunSpec:
    """One run: family, data, settings, seed and budget. Reset rebuilds from this; it crosses to a worker."""

    key: str
    dataset: Dataset
    config: Config | None = None
    seed: int = 0
    n_train: int = 20_000
    max_steps: int | None = None
    max_seconds: float | None = None  # seconds of training (its own time, however the machine is shared)
    max_wall_seconds: float | None = None  # seconds of wall time while running ("finish in N s" for a room)
    early_stopping: bool = True
    val_fraction: float = 0.1
    # after selection on the split, families with refit() (gmm, kde) fit once more with the held-out points
    # added; the run's test points are then inside the fit, so its held-out metrics are no longer held out
    refit: bool = False
    device: str = "cpu"
    views: bool = True  # snapshots carry the family's own pictures (the Compare page needs none)
