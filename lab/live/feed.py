"""Live panels the browser polls: each session's watched runs' latest pictures in one small file, rewritten as
pictures arrive.

Redrawing a panel through a Streamlit rerun costs the server a script run and the browser a React pass over
the whole fragment (on a 2-core machine nine panels at 4-5 refreshes a second kept the browser's main thread
busy all the time, and training got what was left). Here a thread renders each new picture once and writes
the session's panels together to one file under the app's static folder (Streamlit serves it at
app/static/...), which the page fetches a few times a second: no rerun, nothing in the browser but the plots.
One file per session, not per panel: nine panels each polled five times a second cost the server and the
browser about 0.35 of a core in requests alone, one file with all nine 0.16.

A panel's address is "<file's url>#<panel's name>": the file is {"panels": {name: picture, ...}}. File names
are random (128 bits), so a session cannot read another's panels; the folder is this server's own and goes
when it stops (a folder left by a killed server is removed by the next one).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from lab.snapshot import Snapshot

Render = Callable[[Snapshot], str]  # a picture as the text the panel's component reads (a JSON object)


@dataclass
class Panel:
    """One watched run: its name in its group's file and how its picture becomes text."""

    name: str
    group: str  # the key of the file it is written to (a session)
    render: Render
    drawn: float = -1.0  # the snapshot time last rendered
    text: str | None = None  # its last rendered picture


@dataclass
class Group:
    """The watched runs of one session, written together to one file."""

    file: str  # the file's name under the feed's folder (random)
    runs: set[str] = field(default_factory=set)


class Feed:
    """Files for the watched runs' panels under `root`/<this server's folder>; a thread writes them."""

    min_interval = 0.05  # files are rewritten at most this often (pictures come 4-7 times a second per run)

    def __init__(self, root: str, snapshot: Callable[[str], Snapshot | None]):
        self.static_root = root
        self.snapshot = snapshot  # run id -> its latest snapshot (the pool's records)
        self.folder = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.path = os.path.join(root, "live", self.folder)
        self.panels: dict[str, Panel] = {}
        self.groups: dict[str, Group] = {}
        self.dirty: set[str] = set()
        self.cond = threading.Condition()
        self.closed = False
        self._thread: threading.Thread | None = None

    @staticmethod
    def usable(root: str) -> bool:
        """The static folder can be written (a read-only checkout falls back to redrawing by reruns)."""
        try:
            os.makedirs(os.path.join(root, "live"), exist_ok=True)
            return os.access(os.path.join(root, "live"), os.W_OK)
        except OSError:
            return False

    def start(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        _remove_orphans(os.path.join(self.static_root, "live"))
        self._thread = threading.Thread(target=self._loop, name="lab-feed", daemon=True)
        self._thread.start()

    def watch(self, run_id: str, render: Render, group: str = "") -> str:
        """Write run_id's pictures with `render` into `group`'s file; returns the panel's address relative to the
        app's page (Streamlit serves static files under app/static): "<url>#<name>". The same address while it
        stays watched."""
        with self.cond:
            p = self.panels.get(run_id)
            if p is not None and p.group != group:
                self._drop(run_id)
                p = None
            if p is None:
                p = self.panels[run_id] = Panel(secrets.token_hex(8), group, render)
                g = self.groups.setdefault(group, Group(secrets.token_hex(16)))
                g.runs.add(run_id)
            else:
                p.render = render
            self.dirty.add(run_id)
            self.cond.notify()
            return f"app/static/live/{self.folder}/{self.groups[group].file}.json#{p.name}"

    def unwatch(self, run_id: str) -> None:
        with self.cond:
            self._drop(run_id)
            self.cond.notify()

    def _drop(self, run_id: str) -> None:
        """Forget run_id (the lock held): its group's file is rewritten without it, or removed when empty."""
        p = self.panels.pop(run_id, None)
        if p is None:
            return
        g = self.groups.get(p.group)
        if g is not None:
            g.runs.discard(run_id)
            if not g.runs:
                del self.groups[p.group]
                _unlink(os.path.join(self.path, g.file + ".json"))
            else:
                self.dirty.add(next(iter(g.runs)))  # its file is written again, without this panel

    def changed(self, run_id: str) -> None:
        """A new picture came for run_id (called by the pool's reader thread)."""
        with self.cond:
            if run_id in self.panels:
                self.dirty.add(run_id)
                self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify()
        shutil.rmtree(self.path, ignore_errors=True)

    def _loop(self) -> None:
        while True:
            with self.cond:
                while not self.dirty and not self.closed:
                    self.cond.wait()
                if self.closed:
                    return
                todo = [(rid, self.panels[rid]) for rid in self.dirty if rid in self.panels]
                self.dirty.clear()
            for rid, p in todo:
                self.render(rid, p)
            for group in {p.group for _, p in todo}:
                self.write(group)
            time.sleep(self.min_interval)

    def render(self, run_id: str, p: Panel) -> None:
        snap = self.snapshot(run_id)
        if snap is None or snap.samples is None or snap.time == p.drawn:
            return
        try:
            p.text = p.render(snap)
            p.drawn = snap.time
        except Exception as e:  # a panel that cannot be drawn keeps its last picture; the page still works
            print(f"lab feed: the panel of {run_id} could not be written: {e}", file=sys.stderr)

    def write(self, group: str) -> None:
        """The group's file with every panel drawn so far (its panels' texts are joined, not parsed again)."""
        with self.cond:
            g = self.groups.get(group)
            if g is None:
                return
            parts = [(p.name, p.text) for rid in g.runs if (p := self.panels.get(rid)) and p.text is not None]
        text = '{"panels":{' + ",".join(f"{json.dumps(name)}:{t}" for name, t in parts) + "}}"
        tmp = os.path.join(self.path, f".{g.file}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            with self.cond:  # its session went while it was written: no file left behind for nobody
                if self.groups.get(group) is not g:
                    _unlink(tmp)
                    return
                os.replace(tmp, os.path.join(self.path, g.file + ".json"))  # a reader never sees half a file
        except OSError as e:
            print(f"lab feed: the panels could not be written: {e}", file=sys.stderr)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _remove_orphans(live_root: str) -> None:
    """Folders of servers that are gone (killed without cleaning up)."""
    try:
        names = os.listdir(live_root)
    except OSError:
        return
    for name in names:
        pid = name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(live_root, name), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
