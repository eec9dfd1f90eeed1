"""Live training: snapshots and a SessionRunner (one background thread per session)."""

from __future__ import annotations

import atexit
import dataclasses
import math
import os
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from lab.base import GenerativeModel
from lab.metrics import Evaluator
from lab.run import DIVERGED, DONE, PAUSED, READY, RUNNING, STOPPED, History, Run, RunSpec, fit  # noqa: F401

# ---------------------------------------------------------------------------------------------
# Snapshots: what a page draws, made in the training thread, read by the page.
# ---------------------------------------------------------------------------------------------


def density_grid(model: GenerativeModel, bounds, size: int = 64) -> dict[str, np.ndarray] | None:
    """log p on a size x size grid over bounds (x0, x1, y0, y1), or None when there is no density."""
    if not model.has_log_prob:
        return None
    x0, x1, y0, y1 = bounds
    gx, gy = np.linspace(x0, x1, size), np.linspace(y0, y1, size)
    xx, yy = np.meshgrid(gx, gy)
    lp = model.display_log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).numpy().reshape(size, size)
    return {"x": gx, "y": gy, "log_prob": lp}


def make_snapshot(run: Run, n_samples: int = 1000, grid: int = 64, evaluator: Evaluator | None = None,
                  density: dict | None = None, views: tuple[dict, float] | None = None) -> dict[str, Any]:
    """The run as plain arrays for a page; `density` reuses an earlier density grid (the costly part of a
    picture for flows, VAEs and KDE) and `views` an earlier snapshot's (views, views_time), instead of
    computing new ones. `views_time` says when the views were drawn (pages rebuild their figures then)."""
    m = run.model
    t0 = time.perf_counter()
    views_seconds = density_seconds = 0.0  # what this snapshot spent on them (0 when reused)
    if views is None:
        views = (m.views() if run.spec.views else {}), time.time()
        views_seconds = time.perf_counter() - t0
    if density is None:
        t0 = time.perf_counter()
        density = density_grid(m, run.spec.dataset.bounds(), grid)
        density_seconds = time.perf_counter() - t0
    snap: dict[str, Any] = {
        "key": run.spec.key,
        "title": m.title,
        "step": run.step,
        "status": run.status,
        "message": run.message,
        "train_seconds": run.train_seconds,
        "steps_per_second": run.steps_per_second,
        "progress": run.progress,
        "lr": m.config.lr,
        "samples": None,
        "density": density,
        "density_seconds": density_seconds,
        "views": views[0],
        "views_time": views[1],
        "views_seconds": views_seconds,
        "losses": run.losses.arrays(),
        "time": time.time(),
    }
    t0 = time.perf_counter()
    shared = evaluator is not None and n_samples <= evaluator.n
    if shared:  # one draw serves the picture and the metrics (a diffusion model's draw is the costly part of both)
        drawn = evaluator.draw(m)
        snap["samples"] = drawn[:n_samples].astype(np.float32)
        snap["sample_seconds_per_1000"] = (time.perf_counter() - t0) * 1000 / len(drawn)
    else:
        snap["samples"] = m.sample(n_samples, run.spec.seed + 12345).numpy()
        snap["sample_seconds_per_1000"] = (time.perf_counter() - t0) * 1000 / n_samples
    if evaluator is not None:
        run.metrics.add(run.step, evaluator(m, timing=False, n_mode_samples=1000, samples=drawn if shared else None))
    snap["metrics"] = run.metrics.arrays()
    snap["latest_metrics"] = _latest_metrics(run.metrics)
    return snap


SUMMARY_COLUMNS = ["model", "status", "step", "steps/s", "test NLL", "KL to truth", "energy distance", "ED floor",
                   "blur gap", "modes", "high quality", "ms / 1000 samples", "progress"]


def snapshot_summary(label: str, snap: dict) -> dict:
    """One scoreboard row from a snapshot (numbers as numbers, None where a metric does not apply)."""
    m = snap.get("latest_metrics", {}) if snap else {}
    modes = f"{m['modes']}/{m['n_modes']}" if "modes" in m else None
    t = snap.get("sample_seconds_per_1000") if snap else None
    return {
        "model": label,
        "status": snap.get("status") if snap else "building",
        "step": snap.get("step", 0) if snap else 0,
        "steps/s": round(snap.get("steps_per_second", 0.0), 1) if snap else 0.0,
        "test NLL": m.get("test_nll"),
        "KL to truth": m.get("kl_to_truth"),
        "energy distance": m.get("energy_distance"),
        "ED floor": m.get("energy_distance_floor"),
        "blur gap": m.get("blur_gap"),
        "modes": modes,
        "high quality": m.get("high_quality"),
        "ms / 1000 samples": None if t is None else 1000 * t,
        "progress": snap.get("progress", 0.0) if snap else 0.0,
    }


def _latest_metrics(h: History) -> dict[str, float]:
    out: dict[str, float] = {}
    for _, v in h.records:
        out.update({k: x for k, x in v.items() if x is not None})
    return out


# ---------------------------------------------------------------------------------------------
# SessionRunner: one background thread per browser session, round-robin over its runs.
# ---------------------------------------------------------------------------------------------

MAX_TRAINERS = int(os.environ.get("LAB_MAX_TRAINERS", os.cpu_count() or 1))
_SLOTS = threading.BoundedSemaphore(MAX_TRAINERS)  # process-wide: training threads <= cores


def trainer_slots() -> threading.BoundedSemaphore:
    """The process-wide cap on training threads; any background trainer takes a slot while it works."""
    return _SLOTS


# Threads still inside torch when the interpreter finalises abort the process ("terminate called
# without an active exception"): stop every runner first.
_LIVE_RUNNERS: "weakref.WeakSet[SessionRunner]" = weakref.WeakSet()


@atexit.register
def _stop_all_runners() -> None:
    for r in list(_LIVE_RUNNERS):
        r.close()


def set_trainer_cap(n: int) -> None:
    """Replace the process-wide cap (tests use it; the app keeps the core count)."""
    global _SLOTS, MAX_TRAINERS
    MAX_TRAINERS = n
    _SLOTS = threading.BoundedSemaphore(n)


class _PagesFirstLock:
    """The runner's RLock, with page threads served first.

    Python's locks are not fair: the trainer releases the lock between 30 ms slices and takes it back
    at once, so a page thread (Pause, a changed widget) could wait through many slices. Threads other
    than the trainer announce themselves in `waiting`; the trainer ends its slice early and lets them in.
    """

    def __init__(self):
        self._lock = threading.RLock()
        self._count = threading.Lock()  # guards `waiting` (+= is not atomic between threads)
        self.waiting = 0
        self.trainer: threading.Thread | None = None

    def _add(self, k: int) -> None:
        with self._count:
            self.waiting += k

    def __enter__(self):
        if threading.current_thread() is self.trainer:
            self._lock.acquire()
        else:
            self._add(1)
            try:
                self._lock.acquire()
            finally:
                self._add(-1)
        return self

    def __exit__(self, *exc):
        self._lock.release()

    def yield_to_pages(self, limit: float = 0.5) -> None:
        """Trainer side: wait (at most `limit` s) while a page thread wants the lock."""
        t0 = time.monotonic()
        while self.waiting > 0 and time.monotonic() - t0 < limit:
            time.sleep(0.0005)


class SessionRunner:
    """Trains several runs round-robin in one thread; every command answers within ~0.1 s.

    `alive()` is asked about once a second; when it says False (the browser session is gone) the
    thread ends. Nothing here calls streamlit: pages read `snapshot(run_id)`.
    """

    def __init__(
        self,
        alive: Callable[[], bool] | None = None,
        snapshot_interval: float = 0.1,
        metrics_interval: float = 4.0,
        overhead: float = 0.08,
        overhead_many: float = 0.5,
        density_interval: float = 1.0,
        picture_seconds: float = 0.008,
        grid: int = 64,
        n_samples: int = 1000,
        slice_seconds: float = 0.03,
        round_seconds: float = 0.1,
    ):
        self.alive = alive or (lambda: True)
        self.snapshot_interval = snapshot_interval
        self.metrics_interval = metrics_interval
        # live pictures may cost up to this fraction of training time (8 %: a family's page moves ~2 times a
        # second within the 10 % overhead target); more with more than two runs, where every panel still
        # has to move 4-5 times a second (Compare page: six families use ~30 %)
        self.overhead, self.overhead_many = overhead, overhead_many
        self.density_interval = density_interval  # a live picture recomputes its density grid at most this often
        self._last_density: dict[str, float] = {}  # when each run's density grid and costly views were last drawn
        self._density_cost: dict[str, float] = {}  # seconds each run's last density grid took
        self._views_cost: dict[str, float] = {}  # seconds each run's last views() took
        # a live picture draws at most about this long with more than two runs (2.5x with fewer): a slow
        # sampler (50-step diffusion, Langevin) then shows fewer points (at least 64; 250 on a family's own
        # page) rather than holding its panels back; a paused run's picture is full size
        self.picture_seconds = picture_seconds
        self._seconds_per_sample: dict[str, float] = {}
        self.grid, self.n_samples = grid, n_samples
        self.slice_seconds, self.round_seconds = slice_seconds, round_seconds  # see _train_round
        self.runs: dict[str, Run] = {}
        self._snaps: dict[str, dict] = {}
        self._evaluators: dict[str, Evaluator] = {}
        self._lock = _PagesFirstLock()
        self._wake = threading.Event()
        self._pending_steps: dict[str, int] = {}
        self._refresh: set[str] = set()  # paused runs whose picture the trainer redraws once
        self._builds: dict[str, RunSpec] = {}  # run_id -> spec waiting to be built by the thread
        self._start_after_build: dict[str, bool] = {}
        self._commands: deque[Callable[[], None]] = deque()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._has_slot = False
        self.queued = False
        self.snapshot_seconds = 0.0  # time spent on snapshots (overhead accounting)
        self.snapshot_count = 0
        self._train_since_snap = 0.0  # training wall time since the last live snapshot
        self._snap_credit = 0.0  # seconds of snapshot time the training has paid for (see _maybe_snapshot)
        self._picture_cost: dict[str, float] = {}  # seconds of each run's last picture-only snapshot
        self._pictures_since_metrics: dict[str, int] = {}
        self.train_wall = 0.0
        self._last_snap: dict[str, float] = {}
        self._last_metrics: dict[str, float] = {}
        # speed limits (steps per second of wall time) and where each limited run's clock started
        self._speed: dict[str, float] = {}
        self._speed_anchor: dict[str, tuple[float, int]] = {}
        self.error: str | None = None
        _LIVE_RUNNERS.add(self)

    # -- commands (any thread) ---------------------------------------------------------------------
    def add(self, run_id: str, spec: RunSpec, wait: bool = False) -> None:
        """Build a run (paused) and take its first snapshot, in the background thread so a page
        paints at once; replaces a run with the same id. `wait=True` builds in the caller's thread."""
        if wait:
            self._build(run_id, spec)
            self._ensure_thread()
            return
        with self._lock:
            self._builds[run_id] = spec
            self.runs.pop(run_id, None)
            self._snaps.pop(run_id, None)
        self._ensure_thread()
        self._wake.set()

    def _build(self, run_id: str, spec: RunSpec) -> None:
        try:
            run = Run(spec)
        except Exception as e:  # bad settings for this data: a sentence on the page, not a crash
            with self._lock:
                self._snaps[run_id] = {"status": "error", "message": f"could not build {spec.key}: {e}", "step": 0,
                                       "title": spec.key, "steps_per_second": 0.0}
            return
        run.status = PAUSED
        snap = self._snapshot(run_id, run, with_metrics=False)
        with self._lock:
            if self._builds.get(run_id) not in (None, spec):
                return  # superseded while building
            start = self._start_after_build.pop(run_id, False)
            if start:
                run.status = RUNNING
            self.runs[run_id] = run
            self._evaluators.pop(run_id, None)
            self._snaps[run_id] = {**snap, "status": run.status}

    def _build_pending(self) -> None:
        while True:
            if self._closed or not self.alive():  # a closed tab must not go on building nine models
                return
            with self._lock:
                if not self._builds:
                    return
                run_id, spec = next(iter(self._builds.items()))
            self._build(run_id, spec)
            with self._lock:
                if self._builds.get(run_id) is spec:
                    del self._builds[run_id]

    @property
    def building(self) -> bool:
        return bool(self._builds)

    def ensure(self, run_id: str, spec: RunSpec) -> str:
        """Make run_id follow spec: rebuild when the model/data/seed/settings changed, change the
        learning rate or budget live otherwise. Returns "new", "rebuilt", "live" or "same"."""
        with self._lock:
            run = self.runs.get(run_id)
            pending = self._builds.get(run_id)
        if pending is not None:
            if pending != spec:
                self.add(run_id, spec)
                return "rebuilt"
            return "same"
        if run is None:
            self.add(run_id, spec)
            return "new"
        old = run.spec
        cfg_old = run.model.config
        cfg_new = spec.config if spec.config is not None else run.model.Config()
        live = {f.name for f in dataclasses.fields(cfg_new) if f.metadata.get("live")} if type(cfg_old) is type(cfg_new) else set()
        changed_fields = (
            {f.name for f in dataclasses.fields(cfg_new) if getattr(cfg_old, f.name) != getattr(cfg_new, f.name)}
            if type(cfg_old) is type(cfg_new)
            else {"<family>"}
        )
        same_model = (
            old.key == spec.key
            and old.dataset == spec.dataset
            and old.seed == spec.seed
            and old.n_train == spec.n_train
            and old.device == spec.device
            and old.early_stopping == spec.early_stopping
            and changed_fields <= live
        )
        if not same_model:
            self.add(run_id, spec)
            return "rebuilt"
        changed = "same"
        with self._lock:
            if changed_fields:  # live fields: the learning rate, sampler settings... no retraining
                run.model.apply_live({k: getattr(cfg_new, k) for k in changed_fields})
                changed = "live"
            if (old.max_steps, old.max_seconds) != (spec.max_steps, spec.max_seconds) or changed_fields:
                run.spec = dataclasses.replace(old, max_steps=spec.max_steps, max_seconds=spec.max_seconds, config=run.model.config)
                if run.status == DONE and run.budget_left() and not run.model.converged:
                    run.status, run.message = PAUSED, ""  # a bigger budget lets a finished run go on
                changed = "live"
        return changed

    def add_model(self, run_id: str, spec: RunSpec, model: GenerativeModel) -> None:
        """A run around an already trained model (uploaded weights): paused at step 0, ready to go on."""
        run = Run(dataclasses.replace(spec, key=model.key, config=model.config))
        run.model.load_weights(model.weights())
        run.model.scaler = model.scaler  # the weights were trained in the uploaded model's coordinates
        run.model.train_z = run.model.scaler.to_z(torch.as_tensor(run.train_x, dtype=torch.float32)).to(run.model.device)
        run.status, run.message = PAUSED, "loaded from uploaded weights"
        with self._lock:
            self._builds.pop(run_id, None)
            self.runs[run_id] = run
            self._evaluators.pop(run_id, None)
            self._snaps[run_id] = self._snapshot(run_id, run, with_metrics=True)
        self._ensure_thread()

    def remove(self, run_id: str) -> None:
        with self._lock:
            self.runs.pop(run_id, None)
            self._snaps.pop(run_id, None)
            self._evaluators.pop(run_id, None)

    def clear(self) -> None:
        with self._lock:
            self.runs.clear()
            self._snaps.clear()
            self._evaluators.clear()

    def _ids(self, ids) -> list[str]:
        return list(self.runs) if ids is None else [i for i in ([ids] if isinstance(ids, str) else ids) if i in self.runs]

    def play(self, ids=None) -> None:
        with self._lock:
            for i in [ids] if isinstance(ids, str) else (ids or list(self._builds)):
                if i in self._builds:
                    self._start_after_build[i] = True
            for i in self._ids(ids):
                r = self.runs[i]
                if r.status in (READY, PAUSED):
                    r.status = RUNNING
                    self._speed_anchor.pop(i, None)  # a slowed run's clock starts again
                    if i in self._snaps:  # the page says "running" at once, as pause says "paused"
                        self._snaps[i] = {**self._snaps[i], "status": RUNNING}
        self._ensure_thread()
        self._wake.set()

    def pause(self, ids=None) -> None:
        with self._lock:
            self._start_after_build.clear()
            for i in self._ids(ids):
                r = self.runs[i]
                if r.status == RUNNING:
                    r.status = PAUSED
                    # the page says "paused" at once; the trainer then redraws the picture at the paused weights
                    self._snaps[i] = {**self._snaps.get(i, {}), "status": PAUSED}
                    self._refresh.add(i)
            self._pending_steps.clear()
        self._wake.set()

    def step(self, ids=None, n: int = 1) -> None:
        """n single steps on paused runs, then a fresh snapshot."""
        with self._lock:
            for i in self._ids(ids):
                if self.runs[i].status in (READY, PAUSED):
                    self.runs[i].status = PAUSED
                    self._pending_steps[i] = self._pending_steps.get(i, 0) + n
        self._ensure_thread()
        self._wake.set()

    def stop(self, ids=None) -> None:
        with self._lock:
            for i in self._ids(ids):
                self.runs[i].finish(STOPPED, f"stopped at step {self.runs[i].step}")
                self._snaps[i] = {**self._snaps.get(i, {}), "status": STOPPED, "message": self.runs[i].message}
        self._wake.set()

    def reset(self, ids=None) -> None:
        """Rebuild runs from their specs (same seed: the same start)."""
        with self._lock:
            specs = {i: self.runs[i].spec for i in self._ids(ids)}
        for i, spec in specs.items():
            self.add(i, spec, wait=True)  # resets are quick to build: the page shows step 0 at once

    def set_lr(self, run_id: str, lr: float) -> None:
        with self._lock:
            if run_id in self.runs:
                self.runs[run_id].set_lr(lr)

    def set_speed(self, ids=None, steps_per_second: float | None = None) -> None:
        """Slow these runs to at most this many training steps per second of wall time (None: as fast
        as the machine goes), to watch a lesson unfold in front of a room; the panels keep moving."""
        if steps_per_second is not None and not (math.isfinite(steps_per_second) and steps_per_second > 0):
            raise ValueError(f"a speed is a positive number of steps per second, got {steps_per_second!r}")
        with self._lock:
            for i in [ids] if isinstance(ids, str) else (ids if ids is not None else list(self.runs)):
                if self._speed.get(i) == steps_per_second:
                    continue
                if steps_per_second is None:
                    self._speed.pop(i, None)
                else:
                    self._speed[i] = float(steps_per_second)
                self._speed_anchor.pop(i, None)
        self._wake.set()

    def speed(self, run_id: str) -> float | None:
        return self._speed.get(run_id)

    def _allowed_steps(self, run_id: str, run: Run, now: float) -> tuple[int, float]:
        """(steps this run may take now, seconds until its next step) under its speed limit."""
        rate = self._speed.get(run_id)
        if rate is None:
            return 1 << 30, 0.0
        t0, step0 = self._speed_anchor.get(run_id, (now, run.step))
        k = run.step - step0  # steps since the anchor; step k is due at t0 + k / rate
        if now - (t0 + k / rate) > 0.25:  # behind (a slow family, or after a pause): no burst of more than 0.25 s
            t0 = now - 0.25 - k / rate
        self._speed_anchor[run_id] = (t0, step0)
        due = int((now - t0) * rate) + 1 - k
        return max(due, 0), max(0.0, t0 + k / rate - now)

    def snapshot(self, run_id: str) -> dict | None:
        return self._snaps.get(run_id)

    def snapshots(self) -> dict[str, dict]:
        return dict(self._snaps)

    @property
    def running(self) -> bool:
        return any(r.status == RUNNING for r in list(self.runs.values()))

    @property
    def busy(self) -> bool:
        """Training, building, or single steps still to do: a page keeps polling."""
        return self.running or bool(self._builds) or bool(self._pending_steps)

    @property
    def state(self) -> str:
        if self.error:
            return "error"
        if self.queued and (self.running or self._pending_steps):
            return "queued"
        return "running" if self.running else "idle"

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)

    @property
    def thread_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the thread ------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._closed:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="lab-trainer", daemon=True)
            self._lock.trainer = self._thread
            self._thread.start()

    def _release(self) -> None:
        if self._has_slot:
            _SLOTS.release()
            self._has_slot = False

    def _loop(self) -> None:
        torch.set_num_threads(1)  # tiny networks: one intra-op thread per trainer is fastest
        threadpool_limits(1)  # and one BLAS/OpenMP thread: oversubscribed cores slow scikit-learn ~20x
        last_alive = 0.0
        try:
            while not self._closed:
                now = time.monotonic()
                if now - last_alive > 1.0:
                    last_alive = now
                    if not self.alive():
                        break
                if self._builds:
                    self._build_pending()
                with self._lock:
                    work = [i for i, r in self.runs.items() if r.status == RUNNING] + [
                        i for i in [*self._pending_steps, *self._refresh] if i in self.runs
                    ]
                if not work:
                    self._release()
                    self.queued = False
                    self._wake.wait(0.2)
                    self._wake.clear()
                    continue
                if not self._has_slot:
                    self._has_slot = _SLOTS.acquire(timeout=0.2)
                    self.queued = not self._has_slot
                    if not self._has_slot:
                        continue
                wait = self._train_round()
                if wait > 0:  # every running run is slowed and none is due: the core is free until the next step
                    t0 = time.perf_counter()
                    self._wake.wait(min(wait, 0.05))
                    self._wake.clear()
                    # idle time pays for pictures in full (overhead bounds the pictures' share of *training*)
                    self._snap_credit = min(self._snap_credit + time.perf_counter() - t0, 0.1)
        except Exception as e:  # a bug in a family must not kill the page: show it, stop training
            self.error = f"training stopped: {type(e).__name__}: {e}"
            with self._lock:
                for i, r in self.runs.items():
                    if r.status == RUNNING:
                        r.finish(STOPPED, self.error)
                        self._snaps[i] = {**self._snaps.get(i, {}), "status": STOPPED, "message": self.error}
        finally:
            self._release()

    def _train_round(self) -> float:
        """Each running run trains for a slice (30 ms; less with many runs), each slice followed by a due
        snapshot within the overhead budget. Returns how long to wait when no run could train because
        every running one is at its speed limit (0 otherwise)."""
        with self._lock:
            items = list(self.runs.items())
            n_running = sum(r.status == RUNNING for r in self.runs.values())
        # a run's picture waits for its next slice (it shows new weights only), so a round of slices bounds
        # every panel's update rate: six runs share a ~0.1 s round, not 6 x 30 ms
        slice_seconds = min(self.slice_seconds, self.round_seconds / max(n_running, 1))
        any_trained, next_due = False, math.inf
        for run_id, run in items:
            trained = False
            with self._lock:
                t0 = time.perf_counter()  # the slice starts when the lock is ours (a page may have held it)
                if self.runs.get(run_id) is not run:
                    continue
                n_pending = self._pending_steps.pop(run_id, 0)
                refresh = run_id in self._refresh
                self._refresh.discard(run_id)
                if refresh and not n_pending and run.status != RUNNING:
                    # the paused picture and its numbers: metrics come every few seconds while training, and
                    # a pause soon after Train showed step 0's numbers beside the new picture
                    self._snaps[run_id] = self._snapshot(run_id, run, with_metrics=True)
                elif n_pending:
                    run.advance(n_pending)
                    if run.status == RUNNING:
                        run.status = PAUSED
                    self._snaps[run_id] = self._snapshot(run_id, run, with_metrics=True)
                elif run.status == RUNNING:
                    allowed, wait = self._allowed_steps(run_id, run, time.monotonic())
                    if not allowed:
                        next_due = min(next_due, wait)
                        continue
                    # at least one step per slice (a page that waits, waits one step): a slow step (EM over
                    # every point) would otherwise lose whole rounds, and its panel with them
                    run.advance(1)
                    allowed -= 1
                    while allowed > 0 and run.status == RUNNING and time.perf_counter() - t0 < slice_seconds and self._lock.waiting <= 0:
                        run.advance(1)
                        allowed -= 1
                    trained = any_trained = True
                    if run.finished:
                        self._snaps[run_id] = self._snapshot(run_id, run, with_metrics=True)
            if not trained:
                continue
            # a page waiting for the lock (play, pause, a changed setting) goes first
            self._lock.yield_to_pages()
            spent = time.perf_counter() - t0
            self.train_wall += spent
            self._train_since_snap += spent
            # a picture may follow every slice, not only every round: six runs make a round ~0.2 s long
            self._maybe_snapshot()
        return 0.0 if any_trained or next_due == math.inf else next_due

    def _maybe_snapshot(self) -> None:
        """Snapshot the stalest running runs while the overhead budget has credit for it.

        Training time earns credit at `overhead` (8 %; `overhead_many` with more than two runs) and each
        snapshot spends its cost, so training slows by at most that fraction however costly a family's
        snapshot is. Credit rather than "the training since the last snapshot pays for the next": one
        costly picture (a VAE's density grid) used to block every panel for many slices; now the credit
        it overdrew is paid back once and several cheap pictures may follow one slice.
        """
        now = time.monotonic()
        with self._lock:
            running = [(i, r) for i, r in self.runs.items() if r.status == RUNNING]
            if not running:
                return
            overhead = self.overhead_many if len(running) > 2 else self.overhead
            # a cap on saved-up credit: after a quiet spell the pictures resume at their pace, not in a burst
            self._snap_credit = min(self._snap_credit + self._train_since_snap * overhead, 0.1)
            self._train_since_snap = 0.0
            for _ in range(len(running)):
                if self._snap_credit <= 0:
                    return
                # a run that has not trained since its last picture would only be redrawn at the same weights
                moved = [(i, r) for i, r in running if self._snaps.get(i, {}).get("step") != r.step]
                if not moved:
                    return
                run_id, run = min(moved, key=lambda ir: self._last_snap.get(ir[0], 0.0))
                # a slowed run's every step is worth a picture (slow motion is for watching each one)
                interval = min(self.snapshot_interval, 0.5 / self._speed[run_id]) if run_id in self._speed else self.snapshot_interval
                if now - self._last_snap.get(run_id, 0.0) < interval:
                    return
                # pictures first: a run's metrics (costlier) come only after a picture-only snapshot of it, so
                # every panel moves soon after Train even when six families share the budget
                fresh = self._pictures_since_metrics.get(run_id, 0) >= 1
                # metrics cost 10-50x a picture (IWAE with K = 256, a 50-step sampler): with many runs each run is
                # measured less often, so the scoreboard still moves every couple of seconds and pictures keep the budget
                every = self.metrics_interval * max(1.0, len(running) / 2)
                with_metrics = fresh and now - self._last_metrics.get(run_id, 0.0) >= every
                self._pictures_since_metrics[run_id] = 0 if with_metrics else self._pictures_since_metrics.get(run_id, 0) + 1
                t0 = time.perf_counter()
                self._snaps[run_id] = self._snapshot(run_id, run, with_metrics=with_metrics)
                cost = time.perf_counter() - t0
                if with_metrics and len(running) > 2:
                    # many runs: metrics are paced by their interval above, and one costly evaluation (a VAE's
                    # K = 256 bound) must not stall every panel's pictures for a second; charge a picture's cost
                    cost = min(cost, self._picture_cost.get(run_id, cost))
                elif not with_metrics:
                    self._picture_cost[run_id] = cost
                self._snap_credit -= cost

    def _snapshot(self, run_id: str, run: Run, with_metrics: bool) -> dict:
        t0 = time.perf_counter()
        ev = None
        if with_metrics:
            ev = self._evaluators.get(run_id)
            if ev is None:
                ds = run.spec.dataset
                if ds.has_density:  # runs on the same data and seed share one reference sample
                    key = (id(ds), run.spec.seed)
                    ev = next((e for e in self._evaluators.values() if (id(e.dataset), e.seed) == key), None)
                ev = ev or Evaluator(ds, n=500, seed=run.spec.seed, test_points=None if ds.has_density else run.test_points)
                self._evaluators[run_id] = ev
            self._last_metrics[run_id] = time.monotonic()
        # many panels are small panels: with more than two runs, cheaper pictures keep every panel moving
        many = len(self.runs) > 2
        # between metrics, a running run's picture keeps its density grid up to density_interval old: the
        # samples move every picture, the (costlier) density about once a second
        now = time.monotonic()
        old = self._snaps.get(run_id, {})
        interval = self.density_interval * (2 if many else 1)  # six small panels: the samples move, the density every ~2 s
        # and a costly grid (a VAE's IWAE bound on 64 x 64 points: ~65 ms) takes at most half of the pictures' budget,
        # so the samples between grids keep moving
        interval = max(interval, self._density_cost.get(run_id, 0.0) / (0.5 * (self.overhead_many if many else self.overhead)))
        due = with_metrics or run.status != RUNNING or now - self._last_density.get(run_id, -math.inf) >= interval
        if due:
            self._last_density[run_id] = now
        fresh_density = due or old.get("density") is None
        n = self.n_samples // 2 if many else self.n_samples
        per = self._seconds_per_sample.get(run_id)
        if not with_metrics and run.status == RUNNING and per:
            n = int(min(n, max(64, self.picture_seconds / per)) if many else min(n, max(250, 2.5 * self.picture_seconds / per)))
        # the family's own pictures come with every picture when cheap (a GAN's D surface: ~2 ms), else
        # with the density grid (a flow's warped grid, a diffusion model's trajectories: 25-30 ms)
        fresh_views = due or "views" not in old or self._views_cost.get(run_id, 0.0) < self.picture_seconds
        views = None if fresh_views else (old["views"], old["views_time"])
        snap = make_snapshot(run, n, self.grid * 5 // 8 if many else self.grid, ev, density=None if fresh_density else old["density"], views=views)
        if snap["samples"] is not None and len(snap["samples"]):
            self._seconds_per_sample[run_id] = snap["sample_seconds_per_1000"] / 1000
        if fresh_views:
            self._views_cost[run_id] = snap["views_seconds"]
        if fresh_density:
            self._density_cost[run_id] = snap["density_seconds"]
        if n < self.n_samples // 2 and "sample_seconds_per_1000" in old:  # the scoreboard's speed: from full-size draws only
            snap["sample_seconds_per_1000"] = old["sample_seconds_per_1000"]
        if run_id in self._speed:  # a slowed run's steps per second of wall time, not of its training time
            snap["steps_per_second"] = min(snap["steps_per_second"], self._speed[run_id])
        self.snapshot_count += 1
        self._last_snap[run_id] = time.monotonic()
        self.snapshot_seconds += time.perf_counter() - t0
        return snap
