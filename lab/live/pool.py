"""The worker pool: trainer processes shared by every session of one server, one record per run.

Commands go to a run's worker as messages; pictures come back into the run's record, where pages
read them. Nothing here imports torch: the page process only renders. A worker that dies is
replaced and its runs end with a sentence; every worker ends with the server (see lab/live/worker.py).
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

from lab.live.feed import Feed
from lab.live.messages import Command, Picture, Reply
from lab.live.trim import release_memory
from lab.snapshot import BUILDING, FINISHED, RUNNING, STOPPED, Snapshot, placeholder

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_workers() -> int:
    """LAB_WORKERS, else one worker per core. Workers run at a lower priority than the server (see
    lab/live/worker.py), so the page process and a browser on the same machine still answer at once; leaving
    a core to them instead (cores - 1) left half of a 2-core machine idle between their bursts."""
    raw = os.environ.get("LAB_WORKERS", "")
    if raw.strip():
        try:
            return max(1, int(raw))
        except ValueError:
            pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores)


class WorkerProcess:
    """One trainer process and our end of its socket."""

    def __init__(self, index: int):
        self.index = index
        ours, theirs = socket.socketpair()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, env.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab.live.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            cwd=_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.conn = Connection(ours.detach())
        self.lock = threading.Lock()  # Connection.send is not thread-safe
        self.alive = True
        self.requests: set[int] = set()  # open requests answered by this worker

    def send(self, msg) -> bool:
        if not self.alive:
            return False
        try:
            with self.lock:
                self.conn.send(msg)
            return True
        except (OSError, ValueError):
            return False

    def exit_code(self, timeout: float = 1.0) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 2.0) -> None:
        self.send(Command("shutdown"))
        self.alive = False
        if self.exit_code(max(timeout, 0.0)) is None:
            self.proc.kill()
            self.exit_code(timeout)
        try:
            self.conn.close()
        except OSError:
            pass


@dataclass
class RunRecord:
    """One run, as the page process knows it."""

    run_id: str  # the pool's id: "<session>/<page's id>"
    session: str
    spec: Any  # lab.run.RunSpec
    worker: WorkerProcess | None
    snapshot: Snapshot | None = None
    seq: int = 0  # commands sent to it
    waiting: bool = True  # a picture is due (built, stepped, reset)
    speed: float | None = None
    many: bool = False
    recording: Any = None  # lab.record.Recording while the page records this run


@dataclass
class SessionRecord:
    alive: Callable[[], bool]
    runs: set[str] = field(default_factory=set)


class WorkerPool:
    """Trainer processes (started with the first run) and the records of every session's runs."""

    def __init__(self, n_workers: int | None = None):
        self.n_workers = n_workers or default_workers()
        self.workers: list[WorkerProcess] = []
        self.records: dict[str, RunRecord] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.futures: dict[int, Future] = {}
        self.lock = threading.RLock()
        self.closed = False
        self.replaced = 0  # workers replaced after a crash
        self._requests = itertools.count(1)
        self._reader: threading.Thread | None = None
        self.feed: Feed | None = None  # live panels the browser polls (None: pages redraw them by reruns)

    # -- workers ----------------------------------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            if self.closed:
                raise RuntimeError("the worker pool is closed")
            while len(self.workers) < self.n_workers:
                self.workers.append(WorkerProcess(len(self.workers)))
            if self._reader is None:
                self._reader = threading.Thread(target=self._read, name="lab-pool", daemon=True)
                self._reader.start()
                static = os.path.join(_ROOT, "static")
                if Feed.usable(static):
                    self.feed = Feed(static, lambda rid: (r := self.records.get(rid)) and r.snapshot)
                    self.feed.start()

    def crowding(self) -> float:
        """How much slower live views should refresh: 1 up to two open sessions, then in proportion (every
        refresh costs the server and each browser; ten sessions at full rate starved a new one's first page)."""
        return max(1.0, len(self.sessions) / 2)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers if w.alive]

    def _least_loaded(self) -> WorkerProcess:
        self.start()
        load = {id(w): float(len(w.requests)) for w in self.workers}  # sweep members in flight count too
        for r in self.records.values():
            if r.worker is not None and id(r.worker) in load:
                load[id(r.worker)] += 1
        return min((w for w in self.workers if w.alive), key=lambda w: load[id(w)])

    def _read(self) -> None:
        last_reap = 0.0
        while not self.closed:
            with self.lock:
                by_conn = {w.conn: w for w in self.workers if w.alive}
            try:
                ready = wait(list(by_conn), timeout=0.5) if by_conn else []
            except OSError:
                ready = []
            for conn in ready:
                w = by_conn[conn]
                try:
                    msg = conn.recv()
                except (EOFError, OSError):
                    self._lost(w)
                    continue
                except Exception as e:  # a message that does not unpickle: drop it, keep the worker
                    print(f"lab pool: a message from worker {w.index} was unreadable: {e}", file=sys.stderr)
                    continue
                if isinstance(msg, Picture):
                    self._picture(msg)
                elif isinstance(msg, Reply):
                    self._reply(w, msg)
            if time.monotonic() - last_reap > 1.0:
                last_reap = time.monotonic()
                self._reap()

    def _lost(self, w: WorkerProcess) -> None:
        """A worker died: its runs end with a sentence, its requests fail, and a new worker takes its place."""
        if self.closed:
            return
        code = w.exit_code(1.0)
        with self.lock:
            if not w.alive:
                return
            w.alive = False
            why = f"the trainer process stopped (exit code {code}); press Reset to train this run again"
            for r in self.records.values():
                if r.worker is w:
                    r.worker, r.waiting = None, False
                    old = r.snapshot or placeholder(r.run_id, r.spec.key)
                    r.snapshot = old.with_status(STOPPED, why)
            for req in list(w.requests):
                f = self.futures.pop(req, None)
                if f is not None and not f.done():
                    f.set_exception(JobError(why))
            self.workers[self.workers.index(w)] = WorkerProcess(w.index)
            self.replaced += 1
        print(f"lab pool: worker {w.index} stopped (exit code {code}) and was replaced", file=sys.stderr)

    def _picture(self, p: Picture) -> None:
        with self.lock:
            r = self.records.get(p.snapshot.run_id)
            if r is None:
                return  # removed meanwhile
            snap = p.snapshot
            if r.snapshot is not None and p.reuse:
                snap = dataclasses.replace(snap, **{k: getattr(r.snapshot, k) for k in p.reuse})
            if (
                p.seq < r.seq
                and r.snapshot is not None
                and snap.status == RUNNING
                and r.snapshot.status not in (BUILDING,)
            ):
                # drawn before our last command reached the worker: the page keeps the status it asked for
                snap = snap.with_status(r.snapshot.status, r.snapshot.message)
            if p.seq >= r.seq:
                r.waiting = False
            r.snapshot = snap
            if r.recording is not None and snap.samples is not None:
                from lab.record import Frame

                r.recording.add(Frame(snap.step, snap.time, snap.samples, snap.density))
        if self.feed is not None:
            self.feed.changed(p.snapshot.run_id)

    def _reply(self, w: WorkerProcess, msg: Reply) -> None:
        w.requests.discard(msg.request)
        f = self.futures.pop(msg.request, None)
        if f is None or f.done():
            return
        if msg.error:
            f.set_exception(JobError(msg.error))
        else:
            f.set_result(msg.value)

    def _reap(self) -> None:
        """Free the runs of sessions that are gone (a closed browser tab)."""
        with self.lock:
            sessions = list(self.sessions.items())
        freed = False
        for sid, s in sessions:
            try:
                alive = s.alive()
            except Exception:
                alive = False
            if not alive:
                freed = self.close_session(sid, release=False) or freed
        if freed:
            release_memory()

    # -- sessions and runs -----------------------------------------------------------------------
    def open_session(self, session: str, alive: Callable[[], bool]) -> None:
        with self.lock:
            self.sessions.setdefault(session, SessionRecord(alive))

    def close_session(self, session: str, release: bool = True) -> bool:
        """Free a session's runs (True when it had any). `release`: give the freed memory back now (the reaper
        does it once for every session it closed: a collection per session held the reader for seconds)."""
        with self.lock:
            s = self.sessions.pop(session, None)
            ids = [i for i, r in self.records.items() if r.session == session]
            workers = {id(r.worker): r.worker for i in ids if (r := self.records[i]).worker is not None}
            for i in ids:
                del self.records[i]
        if self.feed is not None:
            for i in ids:
                self.feed.unwatch(i)
        for w in workers.values():
            w.send(Command("remove_session", session=session))
        if s is not None:
            s.runs.clear()
        if ids and release:
            release_memory()
        return bool(ids)

    def record(self, run_id: str) -> RunRecord | None:
        return self.records.get(run_id)

    def add(
        self,
        session: str,
        run_id: str,
        spec,
        start: bool = False,
        weights: bytes | None = None,
        many: bool = False,
    ) -> None:
        """Build a run (paused, or started when `start`) on a worker; replaces a run of the same id."""
        with self.lock:
            old = self.records.get(run_id)
            w = (
                old.worker
                if old is not None and old.worker is not None and old.worker.alive
                else self._least_loaded()
            )
            r = RunRecord(
                run_id,
                session,
                spec,
                w,
                placeholder(run_id, spec.key),
                seq=(old.seq + 1) if old else 1,
                speed=old.speed if old else None,
                many=many,
                recording=old.recording if old else None,
            )
            self.records[run_id] = r
            if session in self.sessions:
                self.sessions[session].runs.add(run_id)
            w.send(
                Command(
                    "add",
                    run_id,
                    session,
                    {"spec": spec, "start": start, "weights": weights, "many": many},
                    seq=r.seq,
                )
            )
            if r.speed is not None:
                w.send(Command("speed", run_id, session, {"rate": r.speed}, seq=r.seq))

    def command(self, run_id: str, op: str, **args) -> None:
        with self.lock:
            r = self.records.get(run_id)
            if r is None or r.worker is None:
                return
            r.seq += 1
            if op in ("step", "pause", "stop") and r.snapshot is not None and r.snapshot.status != BUILDING:
                r.waiting = True  # the worker answers these with a still picture
            r.worker.send(Command(op, run_id, r.session, args, seq=r.seq))

    def set_status(self, run_id: str, status: str) -> None:
        """Say `status` at once (Pause answers before the worker does)."""
        with self.lock:
            r = self.records.get(run_id)
            if r is not None and r.snapshot is not None and r.snapshot.status not in FINISHED:
                r.snapshot = r.snapshot.with_status(status)

    def remove(self, run_id: str) -> None:
        with self.lock:
            r = self.records.pop(run_id, None)
            if r is not None and r.session in self.sessions:
                self.sessions[r.session].runs.discard(run_id)
        if self.feed is not None:
            self.feed.unwatch(run_id)
        if r is not None and r.worker is not None:
            r.worker.send(Command("remove", run_id, r.session))

    def request(self, run_id: str, name: str, kwargs: dict | None = None) -> Future:
        """Run a job (lab.live.jobs) on a run's model in its worker; the Future holds its answer."""
        f: Future = Future()
        with self.lock:
            r = self.records.get(run_id)
            if r is None or r.worker is None:
                f.set_exception(JobError("that run is not there (removed, or its trainer stopped)"))
                return f
            req = next(self._requests)
            self.futures[req] = f
            r.worker.requests.add(req)
            ok = r.worker.send(
                Command("job", run_id, r.session, {"name": name, "kwargs": kwargs or {}}, request=req)
            )
        if not ok:
            self.futures.pop(req, None)
            f.set_exception(JobError("the run's trainer process is not answering"))
        return f

    def measure(
        self, spec, evaluate: str = "evaluate", kwargs: dict | None = None, session: str = "sweep"
    ) -> Future:
        """Train a run to its budget on the least loaded worker, then evaluate it there (a sweep member)."""
        f: Future = Future()
        with self.lock:
            w = self._least_loaded()
            req = next(self._requests)
            self.futures[req] = f
            w.requests.add(req)
            ok = w.send(
                Command(
                    "measure",
                    f"{session}/member{req}",
                    session,
                    {"spec": spec, "evaluate": evaluate, "kwargs": kwargs or {}},
                    request=req,
                )
            )
        if not ok:
            self.futures.pop(req, None)
            f.set_exception(JobError("the trainer process is not answering"))
        return f

    def cancel_measures(self, session: str) -> None:
        with self.lock:
            workers = list(self.workers)
        for w in workers:
            w.send(Command("remove_session", session=session))

    def close(self) -> None:
        """Stop every worker (the server is stopping)."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            workers = list(self.workers)
            for f in self.futures.values():
                if not f.done():
                    f.set_exception(JobError("the server is stopping"))
            if self.feed is not None:
                self.feed.close()
        for w in workers:  # all told first, then each waited for: they stop together
            w.send(Command("shutdown"))
        deadline = time.monotonic() + 2.0
        for w in workers:
            w.stop(timeout=deadline - time.monotonic())


class JobError(RuntimeError):
    """A job or measurement that could not be done; its text is one sentence for the page."""


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> WorkerPool:
    """The process-wide pool (every session of one server shares it)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL.closed:
            _POOL = WorkerPool()
        return _POOL


@atexit.register
def _close_pool() -> None:
    if _POOL is not None:
        _POOL.close()
