"""Picture pacing and speed limits for live runs: pure policies with an injected clock.

A trainer worker asks the pacer which run to draw next and how much of it (samples, density grid,
the family's own views, metrics). Pictures are paid for by training time: training earns credit at
`overhead` of its seconds (more with many runs, where every small panel must still move several
times a second) and each picture spends what it cost, so pictures slow training by at most that
fraction however costly a family's picture is. Nothing here sleeps or reads the clock by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

Clock = Callable[[], float]  # seconds, monotonic


@dataclass
class PictureRecord:
    """What the pacer knows about one run's pictures: when, and what they cost."""

    drawn_step: int = -1  # the step of the last picture (a run that has not moved is not redrawn)
    last_picture: float = -math.inf
    last_metrics: float = -math.inf
    last_density: float = -math.inf
    pictures_since_metrics: int = 0
    picture_cost: float | None = None  # seconds of the last picture without metrics
    density_cost: float = 0.0  # seconds of the last density grid
    views_cost: float = 0.0  # seconds of the last views() call
    seconds_per_sample: float | None = None
    has_density: bool = False  # a grid was drawn already (a picture may reuse it)
    has_views: bool = False


@dataclass(frozen=True)
class LiveRun:
    """A running run as the pacer sees it."""

    run_id: str
    step: int
    many: bool = False  # its page shows more than two runs (small panels)
    peers: int = 1  # running runs of its session (metrics are spread over them)
    speed: float | None = None  # a speed limit, steps per second of wall time


@dataclass(frozen=True)
class PictureOrder:
    """What to draw for one run."""

    run_id: str
    metrics: bool  # evaluate the run (test NLL, KL, energy distance...) on this draw
    density: bool  # a fresh density grid (else the last one is reused)
    views: bool  # fresh family pictures (else the last ones are reused)
    n_samples: int
    grid: int  # density grid size


@dataclass(frozen=True)
class PictureCost:
    """What a picture cost, measured by the worker."""

    total: float
    density: float | None = None  # None: no grid was drawn
    views: float | None = None
    seconds_per_sample: float | None = None


class PicturePacer:
    """Decides which live run gets a picture and what goes in it; one PictureRecord per run."""

    def __init__(
        self,
        clock: Clock,
        overhead: float = 0.08,
        overhead_many: float = 0.3,
        interval: float = 0.1,
        interval_many: float = 0.15,
        metrics_interval: float = 4.0,
        density_interval: float = 1.0,
        picture_seconds: float = 0.008,
        grid: int = 64,
        n_samples: int = 1000,
        credit_cap: float = 0.1,
        metrics_share: float = 0.1,
        metrics_cap: float = 1.0,
    ):
        self.clock = clock
        # pictures may cost up to this fraction of training time: 8 % keeps a family page's runner overhead
        # under 10 %; many small panels each moving 4-5 times a second need more
        self.overhead, self.overhead_many = overhead, overhead_many
        self.interval, self.interval_many = interval, interval_many  # pages poll every 0.2-0.5 s
        self.metrics_interval, self.density_interval = metrics_interval, density_interval
        # a live picture of a slow sampler (50-step diffusion, Langevin) draws about this long, with fewer
        # points, rather than holding back its panels
        self.picture_seconds = picture_seconds
        self.grid, self.n_samples = grid, n_samples
        self.credit_cap = credit_cap  # after a quiet spell pictures resume at their pace, not in a burst
        self.credit = 0.0
        # evaluations (test NLL, KL on a grid, energy distance: 0.05-1 s each) have a budget of their own, in
        # full: `metrics_share` of training time. Each run's interval alone let a crowd's fifty runs in one
        # worker spend most of its time measuring (ten sessions: a new session's runs trained 0-50 steps a
        # minute). The credit may go below zero by one evaluation, so a costly one (a VAE's IWAE grid) is
        # not starved by cheap ones; it then waits until training has paid it back.
        self.metrics_share, self.metrics_cap = metrics_share, metrics_cap
        self.metrics_credit = 0.0
        self.min_cost = 0.002  # seconds: below this a picture's cost does not raise its rate further
        # the stalest run whose picture costs more than the credit holds: half of what training earns is put by
        # for it (with forty cheap panels always due, the shared credit never grew to a diffusion chain's 40 ms
        # and the costly panels of a crowded worker froze for a minute)
        self.saving_for: str | None = None
        self.saved = 0.0
        # a run past this many steps whose panel still shows fewer is drawn first, credit or not (once per run):
        # a newcomer's first steps (the worker trains every run's first 20 first) appear at once, not after forty
        # crowded panels' turns; before that its pictures wait for credit like any (ninety runs starting
        # together would otherwise spend the cores drawing)
        self.first_steps = 20
        self.records: dict[str, PictureRecord] = {}

    def record(self, run_id: str) -> PictureRecord:
        return self.records.setdefault(run_id, PictureRecord())

    def forget(self, run_id: str) -> None:
        self.records.pop(run_id, None)

    def earn(self, seconds: float, n_running: int, idle: bool = False) -> None:
        """Training time (or idle time, which pays in full) buys picture time."""
        rate = 1.0 if idle else (self.overhead_many if n_running > 2 else self.overhead)
        earned = seconds * rate
        if self.saving_for is not None:
            put_by = min(earned / 2, max(0.0, self._price(self.saving_for) - self.saved))
            self.saved += put_by
            earned -= put_by
        self.credit = min(self.credit + earned, self.credit_cap)
        share = 1.0 if idle else self.metrics_share
        self.metrics_credit = min(self.metrics_credit + seconds * share, self.metrics_cap)

    def next_live(self, running: list[LiveRun]) -> PictureOrder | None:
        """Of the running runs that moved since their last picture and are past their interval, the stalest
        for its cost, if there is credit."""
        now = self.clock()
        moved = [
            r
            for r in running
            if self.record(r.run_id).drawn_step != r.step
            and now - self.record(r.run_id).last_picture >= self._interval(r)
        ]
        if self.saving_for is not None and self.saving_for not in {r.run_id for r in moved}:
            # it stopped, was removed, or was drawn as a still meanwhile
            self.credit = min(self.credit + self._take_saved(), self.credit_cap)
        first = [r for r in moved if r.step >= self.first_steps > self.record(r.run_id).drawn_step]
        if first:
            r = max(first, key=lambda r: self._staleness(r.run_id, now))
        else:
            r = self._due(moved, now)
            if r is None:
                return None
        rec = self.record(r.run_id)
        # a run's first pictures come without metrics (10-50x a picture's cost), so every panel moves soon after
        # Train; with many runs each is measured less often and the scoreboard still moves every few seconds
        every = self.metrics_interval * max(1.0, r.peers / 2)
        metrics = (
            rec.pictures_since_metrics >= 1 and now - rec.last_metrics >= every and self.metrics_credit >= 0
        )
        return self._order(r.run_id, rec, now, metrics=metrics, live=True, many=r.many)

    def _due(self, moved: list[LiveRun], now: float) -> LiveRun | None:
        """The stalest moved run whose picture the credit covers (saving up for a costly one meanwhile)."""
        if not moved or self.credit + self.saved <= 0:
            return None
        # the stalest run in proportion to the square root of what its picture costs: a cheap panel (an AE's
        # 1 ms) moves several times a second while a diffusion chain's (30-50 ms) moves about once, instead of
        # every panel waiting at the pace the costliest ones set
        stalest = max(moved, key=lambda r: self._staleness(r.run_id, now))
        if self.saving_for is None and self.credit < self._price(stalest.run_id):
            self.saving_for, self.saved = stalest.run_id, 0.0
        due = [
            r
            for r in moved
            if self.credit + (self.saved if r.run_id == self.saving_for else 0.0) >= self._price(r.run_id)
        ]
        if not due:
            return None
        return max(due, key=lambda r: self._staleness(r.run_id, now))

    def _take_saved(self) -> float:
        saved, self.saving_for, self.saved = self.saved, None, 0.0
        return saved

    def _interval(self, r: LiveRun) -> float:
        interval = self.interval_many if r.many else self.interval
        return min(interval, 0.5 / r.speed) if r.speed else interval  # slow motion is for watching every step

    def _price(self, run_id: str) -> float:
        """Credit a run's picture waits for: its last cost (a costly picture saves up while cheap ones go
        on, rather than every picture waiting for the credit the costly one spent), at most 90 % of the cap."""
        return min(self.record(run_id).picture_cost or 0.0, 0.9 * self.credit_cap)

    def _staleness(self, run_id: str, now: float) -> float:
        rec = self.record(run_id)
        return (now - rec.last_picture) / math.sqrt(max(rec.picture_cost or 0.0, self.min_cost))

    def still(self, run_id: str, many: bool = False) -> PictureOrder:
        """A paused, stepped or finished run's picture: full size, fresh, with metrics."""
        return self._order(run_id, self.record(run_id), self.clock(), metrics=True, live=False, many=many)

    def _order(
        self, run_id: str, rec: PictureRecord, now: float, metrics: bool, live: bool, many: bool
    ) -> PictureOrder:
        # the samples move every picture, the (costlier) density grid about once a second (every 2 s on small
        # panels), and a costly grid (a VAE's IWAE bound: ~65 ms) takes at most half of the pictures' budget
        overhead = self.overhead_many if many else self.overhead
        costly_views = (
            rec.views_cost if rec.views_cost >= self.picture_seconds else 0.0
        )  # they come with the grid
        interval = max(
            self.density_interval * (2 if many else 1), (rec.density_cost + costly_views) / (0.5 * overhead)
        )
        due = metrics or not live or now - rec.last_density >= interval
        n = self.n_samples // 2 if many else self.n_samples
        if live and not metrics and rec.seconds_per_sample:
            budget = self.picture_seconds if many else 2.5 * self.picture_seconds
            n = int(min(n, max(64 if many else 250, budget / rec.seconds_per_sample)))
        # a family's own pictures come with every picture when cheap (a GAN's D surface), else with the density
        views = due or not rec.has_views or rec.views_cost < self.picture_seconds
        return PictureOrder(
            run_id,
            metrics=metrics,
            density=due or not rec.has_density,
            views=views,
            n_samples=n,
            grid=self.grid * 5 // 8 if many else self.grid,
        )

    def paid(
        self, order: PictureOrder, cost: PictureCost, step: int, live: bool = True, many: bool = False
    ) -> None:
        """Book a drawn picture: its cost comes off the credit (live pictures only)."""
        now = self.clock()
        rec = self.record(order.run_id)
        rec.drawn_step, rec.last_picture = step, now
        if order.density:
            rec.last_density, rec.has_density = now, True
            rec.density_cost = cost.density or 0.0
        if order.views:
            rec.has_views, rec.views_cost = True, cost.views or 0.0
        if cost.seconds_per_sample is not None and order.n_samples >= self.n_samples // 2:
            rec.seconds_per_sample = cost.seconds_per_sample
        elif cost.seconds_per_sample is not None and rec.seconds_per_sample is None:
            rec.seconds_per_sample = cost.seconds_per_sample
        charged = cost.total
        if order.metrics:
            rec.last_metrics, rec.pictures_since_metrics = now, 0
            if live:
                self.metrics_credit -= cost.total
            # with many panels metrics are paced by their interval alone: one costly evaluation (a VAE's K = 256
            # bound) must not stall every panel for a second; a single run pays for them like any picture
            if many and rec.picture_cost is not None:
                charged = min(charged, rec.picture_cost)
        else:
            rec.pictures_since_metrics += 1
            rec.picture_cost = cost.total
        if live:
            if order.run_id == self.saving_for:
                self.credit += self._take_saved()
            self.credit -= charged


class SpeedLimit:
    """At most `rate` training steps per second of wall time: step k after the anchor is due at
    t0 + k / rate. A run that falls behind (a slow family, a pause) catches up at most `catch_up` s."""

    def __init__(self, rate: float, catch_up: float = 0.25):
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"a speed is a positive number of steps per second, got {rate!r}")
        self.rate, self.catch_up = float(rate), catch_up
        self.anchor: tuple[float, int] | None = None  # (t0, step at t0)

    def restart(self) -> None:
        self.anchor = None

    def allowed(self, now: float, step: int) -> tuple[int, float]:
        """(steps the run may take now, seconds until its next step is due)."""
        t0, step0 = self.anchor if self.anchor is not None else (now, step)
        k = step - step0
        if now - (t0 + k / self.rate) > self.catch_up:
            t0 = now - self.catch_up - k / self.rate
        self.anchor = (t0, step0)
        due = int((now - t0) * self.rate) + 1 - k
        return max(due, 0), max(0.0, t0 + k / self.rate - now)
