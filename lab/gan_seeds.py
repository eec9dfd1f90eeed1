"""The GAN page's seeds view: one GAN setup under 16-64 seeds as a sweep (lab.sweep) on the server's trainer
workers, in the background; the collapse rate with its standard error and every member's samples."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from lab.sweep import Member, Sweep, SweepJob, parse_grid, stats

MIN_SEEDS, MAX_SEEDS = 16, 64
N_SAMPLES = 300  # points per member for its small panel


def seeds_sweep(
    dataset,
    config,
    seeds: list[int],
    steps: int,
    data_name: str | None = None,
    n_train: int = 10_000,
    n_eval: int = 1000,
) -> Sweep:
    """The Sweep of `gan` x seeds with `config`: its fields that differ from the defaults are the sweep's
    one-valued settings, exactly as `python -m lab sweep --set field=value` would give them."""
    from lab.gan import GANConfig

    if not isinstance(config, GANConfig):
        raise ValueError("a GAN seeds sweep needs a GAN config.")
    default = GANConfig()
    sets = [
        f"{f.name}={getattr(config, f.name)}"
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(default, f.name)
    ]
    grid = parse_grid(sets)
    sweep = Sweep(
        ["gan"],
        dataset,
        data_name or dataset.name,
        list(seeds),
        grid,
        max_steps=int(steps),
        n_train=n_train,
        n_eval=n_eval,
    )
    settings = tuple((k, v[0]) for k, v in grid.items())
    sweep.members = [Member("gan", s, settings) for s in seeds]
    return sweep


@dataclass(frozen=True)
class MemberResult:
    """One finished member: the sweep's row (lab.sweep.row_of) and its samples [N_SAMPLES, 2] (None when it
    failed). modes / n_modes / high_quality are None on a dataset without modes."""

    seed: int
    row: dict
    samples: np.ndarray | None

    @property
    def modes(self) -> int | None:
        return self.row.get("modes")

    @property
    def n_modes(self) -> int | None:
        return self.row.get("n_modes")

    @property
    def error(self) -> str:
        return self.row.get("error") or ""

    @property
    def collapsed(self) -> bool | None:
        """True when the member missed at least one mode (None without modes, or without a number)."""
        if self.modes is None or self.n_modes is None:
            return None
        return self.modes < self.n_modes


@dataclass(frozen=True)
class SeedsSummary:
    """The view's headline: members done, the collapse rate (the share of evaluated members that missed a
    mode) and its standard error (lab.sweep.stats of the 0/1 outcomes), divergences and failures."""

    done: int
    total: int
    evaluated: int  # members with a mode count
    collapsed: int
    rate: float | None
    se: float | None
    diverged: int
    failed: int
    elapsed: float
    left: float | None  # seconds, estimated from the pace so far

    @property
    def progress(self) -> float:
        return self.done / self.total if self.total else 1.0


def collapse_summary(results: list[MemberResult], total: int, elapsed: float = 0.0) -> SeedsSummary:
    outcomes = [1.0 if r.collapsed else 0.0 for r in results if r.collapsed is not None]
    s = stats(outcomes)
    done = len(results)
    left = elapsed / done * (total - done) if 0 < done < total else (0.0 if done >= total else None)
    return SeedsSummary(
        done=done,
        total=total,
        evaluated=len(outcomes),
        collapsed=int(sum(outcomes)),
        rate=s["mean"],
        se=s["se"],
        diverged=sum(bool(r.row.get("diverged")) for r in results),
        failed=sum(r.row.get("status") == "failed" for r in results),
        elapsed=elapsed,
        left=left,
    )


class _KeepSamples:
    """The trainer pool as lab.sweep.SweepJob sees it (n_workers, measure, cancel_measures), asking every
    member's evaluation (lab.live.jobs.evaluate) for `n` of its samples and keeping them by seed: a sweep's
    rows hold numbers only. `owner()` False (the browser session is gone) turns the members not yet started
    into failed rows, so an abandoned sweep ends after the ones in flight."""

    def __init__(self, pool, n: int, owner=None):
        self.pool, self.n, self.owner = pool, n, owner
        self.samples: dict[int, np.ndarray] = {}

    @property
    def n_workers(self) -> int:
        return self.pool.n_workers

    def measure(self, spec, evaluate: str = "evaluate", kwargs: dict | None = None, session: str = "sweep"):
        if self.owner is not None and not self.owner():
            raise RuntimeError("the page that started this sweep is closed")
        f = self.pool.measure(spec, evaluate, {**(kwargs or {}), "samples": self.n}, session=session)
        f.add_done_callback(lambda f, seed=spec.seed: self._keep(seed, f))
        return f

    def _keep(self, seed: int, f) -> None:
        if not f.cancelled() and f.exception() is None and isinstance(f.result(), dict):
            s = f.result().get("samples")
            if s is not None:
                self.samples[seed] = np.asarray(s)

    def cancel_measures(self, session: str) -> None:
        self.pool.cancel_measures(session)


class SeedsJob:
    """A seeds sweep in the background (lab.sweep.SweepJob on the server's trainer pool, so the members take
    turns with the live pages' runs): the page polls `summary()` and `results()` and never waits."""

    def __init__(self, sweep: Sweep, pool=None, n_samples: int = N_SAMPLES, owner=None):
        from lab.live.pool import get_pool

        self.sweep = sweep
        self._pool = _KeepSamples(pool or get_pool(), n_samples, owner)
        self.job = SweepJob(sweep, pool=self._pool, name="gan-seeds")

    def start(self) -> "SeedsJob":
        self.job.start()
        return self

    def cancel(self, wait: float = 0.0) -> None:
        self.job.cancel(wait)

    @property
    def done(self) -> bool:
        return self.job.done

    @property
    def error(self) -> str:
        return self.job.error

    def results(self) -> list[MemberResult]:
        """The finished members, in seed order, with their samples."""
        pairs = sorted(self.job.pairs(), key=lambda p: p[0].seed)
        return [MemberResult(m.seed, row, self._pool.samples.get(m.seed)) for m, row in pairs]

    def summary(self) -> SeedsSummary:
        return collapse_summary(self.results(), self.job.total, self.job.elapsed)

    def table(self) -> list[dict]:
        """mean, se, min, max, n of the members' numbers so far (lab.sweep's summary), for the page."""
        keep = ("modes", "high_quality", "energy_distance", "energy_distance_floor", "steps", "train_seconds")
        return [s for s in self.job.summary() if s["metric"] in keep]


def session_alive(runner):
    """A predicate: the browser session of this LiveSession is still open (the pool frees a closed one's runs)."""
    return lambda: runner.id in runner.pool.sessions
