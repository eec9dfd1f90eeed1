"""The facade pages use: one browser session's runs on the shared worker pool, by the page's own ids.

A page never holds a model: it sends commands (play, pause, step, reset, speed, live settings),
reads typed snapshots, and runs jobs on a model in its worker (`call`). Two sessions never see each
other's runs: a run's pool id is the session's id and the page's id together.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from typing import Any, Callable, Iterable

import numpy as np

from lab.live.pool import JobError, WorkerPool, get_pool
from lab.snapshot import BUILDING, FINISHED, PAUSED, READY, RUNNING, Snapshot

__all__ = ["JobError", "LiveSession", "RunDensity"]


def _config_changes(old, new) -> set[str] | None:
    """Names of the config fields that differ, or None when the family (config class) changed."""
    if old is None and new is None:
        return set()
    if old is None or new is None or type(old) is not type(new):
        return None
    return {f.name for f in dataclasses.fields(new) if getattr(old, f.name) != getattr(new, f.name)}


def _live_fields(config) -> set[str]:
    return (
        {f.name for f in dataclasses.fields(config) if f.metadata.get("live")}
        if config is not None
        else set()
    )


class LiveSession:
    """One browser session's runs. Every method answers at once (commands are messages)."""

    def __init__(
        self,
        pool: WorkerPool | None = None,
        session_id: str | None = None,
        alive: Callable[[], bool] | None = None,
    ):
        self.pool = pool or get_pool()
        self.id = session_id or uuid.uuid4().hex[:12]
        self.pool.open_session(self.id, alive or (lambda: True))
        # the workers start with the first page a user opens (they import torch and warm up meanwhile),
        # not with the first run: the first Train then answers at once
        self.pool.start()
        self.error: str | None = None

    def _gid(self, run_id: str) -> str:
        return f"{self.id}/{run_id}"

    def _ids(self, ids: str | Iterable[str] | None) -> list[str]:
        if ids is None:
            return self.ids
        return [i for i in ([ids] if isinstance(ids, str) else ids) if i and self.has(i)]

    @property
    def ids(self) -> list[str]:
        """The page ids of this session's runs."""
        prefix = f"{self.id}/"
        return [r.run_id[len(prefix) :] for r in list(self.pool.records.values()) if r.session == self.id]

    def has(self, run_id: str) -> bool:
        return self._gid(run_id) in self.pool.records

    # -- building ---------------------------------------------------------------------------------
    def add(
        self, run_id: str, spec, start: bool = False, weights: bytes | None = None, many: bool = False
    ) -> None:
        """Build a run (paused) in a worker; replaces a run with the same id. `weights`: uploaded
        safetensors bytes to start from."""
        self.pool.add(self.id, self._gid(run_id), spec, start=start, weights=weights, many=many)

    def ensure(self, run_id: str, spec, many: bool = False) -> str:
        """Make run_id follow spec: rebuild when the model, data, seed or a non-live setting changed;
        change live settings (learning rate, sampler steps) and the budget in place.
        Returns "new", "rebuilt", "live" or "same"."""
        r = self.pool.record(self._gid(run_id))
        if r is None:
            self.add(run_id, spec, many=many)
            return "new"
        old = r.spec
        if old is spec or (old == spec and r.many == many):
            return "same"
        changes = _config_changes(old.config, spec.config)
        same_model = (
            changes is not None
            and changes <= _live_fields(spec.config)
            and all(
                getattr(old, f) == getattr(spec, f)
                for f in (
                    "key",
                    "dataset",
                    "seed",
                    "n_train",
                    "device",
                    "early_stopping",
                    "views",
                    "val_fraction",
                )
            )
        )
        if not same_model:
            self.add(run_id, spec, many=many)
            return "rebuilt"
        r.spec, r.many = spec, many
        fields = {k: getattr(spec.config, k) for k in changes or ()}
        self.pool.command(
            r.run_id,
            "live",
            fields=fields,
            max_steps=spec.max_steps,
            max_seconds=spec.max_seconds,
            max_wall_seconds=spec.max_wall_seconds,
            many=many,
        )
        budget = ("max_steps", "max_seconds", "max_wall_seconds")
        return "live" if fields or any(getattr(old, b) != getattr(spec, b) for b in budget) else "same"

    def remove(self, run_id: str) -> None:
        self.pool.remove(self._gid(run_id))

    def clear(self) -> None:
        for i in self.ids:
            self.remove(i)

    def close(self) -> None:
        """Free every run of this session (the browser tab is gone)."""
        self.pool.close_session(self.id)

    # -- commands -----------------------------------------------------------------------------------
    def play(self, ids=None) -> None:
        for i in self._ids(ids):
            s = self.snapshot(i)
            if s is None or s.status in (READY, PAUSED, BUILDING):
                self.pool.set_status(
                    self._gid(i), RUNNING if s is not None and s.status != BUILDING else BUILDING
                )
                self.pool.command(self._gid(i), "play")

    def pause(self, ids=None) -> None:
        for i in self._ids(ids):
            self.pool.set_status(self._gid(i), PAUSED)
            self.pool.command(self._gid(i), "pause")

    def step(self, ids=None, n: int = 1) -> None:
        """n training steps on paused runs, then a fresh picture."""
        for i in self._ids(ids):
            self.pool.command(self._gid(i), "step", n=int(n))

    def stop(self, ids=None) -> None:
        for i in self._ids(ids):
            self.pool.command(self._gid(i), "stop")

    def reset(self, ids=None) -> None:
        """Rebuild runs from their specs (same seed: the same start)."""
        for i in self._ids(ids):
            r = self.pool.record(self._gid(i))
            if r is not None:
                self.add(i, r.spec, many=r.many)

    def set_speed(self, ids=None, steps_per_second: float | None = None) -> None:
        """At most this many training steps per second of wall time (None: as fast as the machine goes)."""
        if steps_per_second is not None and not (math.isfinite(steps_per_second) and steps_per_second > 0):
            raise ValueError(f"a speed is a positive number of steps per second, got {steps_per_second!r}")
        for i in self._ids(ids):
            r = self.pool.record(self._gid(i))
            if r is not None and r.speed != steps_per_second:
                r.speed = steps_per_second
                self.pool.command(r.run_id, "speed", rate=steps_per_second)

    def record(self, ids=None, on: bool = True) -> None:
        """Keep (or stop keeping) these runs' pictures as they arrive, for an animation (lab.record). Costs
        training nothing: the pictures come to this process anyway."""
        from lab.record import Recording

        for i in self._ids(ids):
            r = self.pool.record(self._gid(i))
            if r is not None and (r.recording is not None) != on:
                r.recording = Recording() if on else None

    def recording(self, run_id: str):
        """The run's lab.record.Recording, or None when it is not recorded."""
        r = self.pool.record(self._gid(run_id))
        return r.recording if r else None

    def speed(self, run_id: str) -> float | None:
        r = self.pool.record(self._gid(run_id))
        return r.speed if r else None

    def set_lr(self, run_id: str, lr: float) -> None:
        r = self.pool.record(self._gid(run_id))
        if r is not None and r.spec.config is not None:
            self.ensure(
                run_id, dataclasses.replace(r.spec, config=dataclasses.replace(r.spec.config, lr=lr)), r.many
            )

    # -- queries ------------------------------------------------------------------------------------
    def snapshot(self, run_id: str) -> Snapshot | None:
        r = self.pool.record(self._gid(run_id))
        return r.snapshot if r else None

    def moving(self, run_id: str) -> bool:
        """The run's picture will still change by itself: it trains, or a still picture (after Pause, Step or
        Stop) is on its way. A live panel keeps fetching until then."""
        r = self.pool.record(self._gid(run_id))
        return r is not None and (r.waiting or (r.snapshot is not None and r.snapshot.status == RUNNING))

    def watch(self, run_id: str, render: Callable[[Snapshot], str]) -> str | None:
        """Publish run_id's pictures as a panel the browser polls (lab.live.feed): `render` turns a snapshot
        into the panel's text in a feed thread (it must not call streamlit). Returns the panel's address
        relative to the page, or None where there is no feed (the page then redraws the panel by reruns)."""
        feed = self.pool.feed
        if feed is None or not self.has(run_id):
            return None
        return feed.watch(self._gid(run_id), render, group=self.id)  # one file for the session's panels

    def call(self, run_id: str, job: str, timeout: float = 120.0, **kwargs) -> Any:
        """Run a job (lab.live.jobs) on the run's model in its worker and return its answer.
        Raises JobError with one sentence when it cannot be done."""
        f = self.pool.request(self._gid(run_id), job, kwargs)
        try:
            return f.result(timeout)
        except TimeoutError:
            raise JobError(f"the trainer did not answer within {timeout:g} s") from None

    def weights(self, run_id: str) -> bytes:
        return self.call(run_id, "weights")

    def _records(self):
        return [r for r in list(self.pool.records.values()) if r.session == self.id]

    @property
    def running(self) -> bool:
        return any(r.snapshot is not None and r.snapshot.status == RUNNING for r in self._records())

    @property
    def building(self) -> bool:
        return any(r.snapshot is None or r.snapshot.status == BUILDING for r in self._records())

    @property
    def busy(self) -> bool:
        """Training, building, or a picture still due: a page keeps polling."""
        return any(
            r.waiting or r.snapshot is None or r.snapshot.status in (RUNNING, BUILDING)
            for r in self._records()
            if r.worker is not None
        )

    @property
    def state(self) -> str:
        if self.error:
            return "error"
        return "running" if self.running else "idle"

    def finished(self, run_id: str) -> bool:
        s = self.snapshot(run_id)
        return s is not None and s.status in FINISHED


class RunDensity:
    """A run's density, evaluated in its worker: what lab.classify's GenerativeClassifier needs of a
    class-conditional (log_prob, marginal_log_prob, title, has_log_prob), without the model here."""

    def __init__(self, session: LiveSession, run_id: str):
        self.session, self.run_id = session, run_id
        info = session.call(run_id, "info")
        self.key, self.title, self.has_log_prob = info["key"], info["title"], info["has_log_prob"]

    def log_prob(self, x) -> np.ndarray:
        return self.session.call(self.run_id, "log_prob", x=np.asarray(x, dtype=np.float64))

    def marginal_log_prob(self, v, keep: int, lo: float, hi: float) -> np.ndarray:
        return self.session.call(
            self.run_id, "marginal_log_prob", v=np.asarray(v, dtype=np.float64), keep=keep, lo=lo, hi=hi
        )
