"""Live panels the browser polls: each watched run's latest picture as a small file, redrawn as pictures arrive.

Redrawing a panel through a Streamlit rerun costs the server a script run and the browser a React pass over
the whole fragment (on a 2-core machine nine panels at 4-5 refreshes a second kept the browser's main thread
busy all the time, and training got what was left). Here a thread renders each new picture once, to a file
under the app's static folder (Streamlit serves it at app/static/...), and the panel's component fetches it
a few times a second: no rerun, nothing in the browser but the plot itself.

File names are random (128 bits), so a session cannot read another's panels; the folder is this server's
own and goes when it stops (a folder left by a killed server is removed by the next one).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

from lab.snapshot import Snapshot

Render = Callable[[Snapshot], str]  # a picture as the text the panel's component reads (a plotly spec)


@dataclass
class Panel:
    """One watched run: where its file goes and how its picture becomes text."""

    name: str  # the file's name under the feed's folder
    render: Render
    drawn: float = -1.0  # the snapshot time last written


class Feed:
    """Files for the watched runs' panels under `root`/<this server's folder>; a thread writes them."""

    min_interval = 0.05  # a run's file is rewritten at most this often (pictures come 4-7 times a second)

    def __init__(self, root: str, snapshot: Callable[[str], Snapshot | None]):
        self.static_root = root
        self.snapshot = snapshot  # run id -> its latest snapshot (the pool's records)
        self.folder = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.path = os.path.join(root, "live", self.folder)
        self.panels: dict[str, Panel] = {}
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

    def url(self, name: str) -> str:
        """The panel's address relative to the app's page (Streamlit serves static files under app/static)."""
        return f"app/static/live/{self.folder}/{name}.json"

    def watch(self, run_id: str, render: Render) -> str:
        """Write run_id's pictures with `render`; returns the panel's file name (kept when already watched)."""
        with self.cond:
            p = self.panels.get(run_id)
            if p is None:
                p = self.panels[run_id] = Panel(secrets.token_hex(16), render)
            else:
                p.render = render
            self.dirty.add(run_id)
            self.cond.notify()
            return p.name

    def unwatch(self, run_id: str) -> None:
        with self.cond:
            p = self.panels.pop(run_id, None)
            self.dirty.discard(run_id)
        if p is not None:
            _unlink(os.path.join(self.path, p.name + ".json"))

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
                self.write(rid, p)
            time.sleep(self.min_interval)

    def write(self, run_id: str, p: Panel) -> None:
        snap = self.snapshot(run_id)
        if snap is None or snap.samples is None or snap.time == p.drawn:
            return
        try:
            text = p.render(snap)
            tmp = os.path.join(self.path, f".{p.name}.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            with self.cond:  # unwatched while it was drawn (its tab closed): no file left behind for nobody
                if self.panels.get(run_id) is not p:
                    _unlink(tmp)
                    return
                os.replace(tmp, os.path.join(self.path, p.name + ".json"))  # a reader never sees half a file
            p.drawn = snap.time
        except Exception as e:  # a panel that cannot be drawn keeps its last picture; the page still works
            print(f"lab feed: the panel of {run_id} could not be written: {e}", file=sys.stderr)


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
