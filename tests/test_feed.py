"""Live panels written for the browser to poll (lab/live/feed.py), alone and on the real pool."""

import json
import os
import subprocess
import sys

import numpy as np

from lab.live.feed import Feed
from lab.live.session import LiveSession
from lab.snapshot import RUNNING, Snapshot
from tests.test_live import built, pool, spec, wait_for  # noqa: F401  (pool is a fixture)


def snap(run_id: str, t: float, step: int = 0, samples=True) -> Snapshot:
    return Snapshot(
        run_id, "toy", "toy", status=RUNNING, step=step, time=t, samples=np.zeros((3, 2)) if samples else None
    )


def render(s: Snapshot) -> str:
    return json.dumps({"step": s.step, "v": s.time})


def file_of(feed: Feed, address: str) -> str:
    url, _, _ = address.partition("#")
    assert url.startswith(f"app/static/live/{feed.folder}/") and url.endswith(".json")
    return os.path.join(feed.path, os.path.basename(url))


def read(feed: Feed, address: str):
    """The panel's picture in its file, or None."""
    path = file_of(feed, address)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["panels"].get(address.partition("#")[2])


def files(feed: Feed) -> list[str]:
    return sorted(f for f in os.listdir(feed.path) if not f.startswith("."))


def test_a_watched_run_is_written_as_its_pictures_come_and_removed_when_unwatched(tmp_path):
    latest = {"a": snap("a", 1.0, step=1), "b": snap("b", 1.0, samples=False), "c": snap("c", 1.0, step=4)}
    feed = Feed(str(tmp_path), latest.get)
    feed.start()
    try:
        a = feed.watch("a", render, group="s1")
        assert wait_for(lambda: read(feed, a) == {"step": 1, "v": 1.0}, timeout=5)
        latest["a"] = snap("a", 2.0, step=7)
        feed.changed("a")
        assert wait_for(lambda: read(feed, a) == {"step": 7, "v": 2.0}, timeout=5)
        assert feed.watch("a", render, group="s1") == a  # watched again (every rerun): the same address
        b = feed.watch("b", render, group="s1")  # no picture yet: not in the file
        feed.changed("b")
        assert b != a and file_of(feed, b) == file_of(feed, a)  # one file for the session's panels
        assert not wait_for(lambda: read(feed, b) is not None, timeout=0.3)
        c = feed.watch("c", render, group="s2")  # another session: a file of its own
        assert file_of(feed, c) != file_of(feed, a)
        assert wait_for(lambda: read(feed, c) == {"step": 4, "v": 1.0}, timeout=5)
        with open(file_of(feed, c)) as f:
            assert list(json.load(f)["panels"]) == [c.partition("#")[2]]  # nothing of the other session's
        feed.changed("nobody")  # a run nobody watches: ignored
        feed.unwatch("a")  # the file is written again without it
        assert wait_for(lambda: os.path.exists(file_of(feed, a)) and read(feed, a) is None, timeout=5)
        feed.unwatch("b")  # the session's last panel: its file goes
        assert not os.path.exists(file_of(feed, a))
        feed.unwatch("c")
        assert files(feed) == []
    finally:
        feed.close()
    assert not os.path.exists(feed.path)


def test_a_run_unwatched_while_its_picture_is_drawn_leaves_no_file(tmp_path):
    """A tab closed while the feed thread draws its panel: the drawing finishes after the file was removed,
    and must not write it again (a file nobody reads, left until the server stops)."""
    import threading

    drawing, closed = threading.Event(), threading.Event()

    def slow(s: Snapshot) -> str:
        drawing.set()
        closed.wait(5)
        return render(s)

    feed = Feed(str(tmp_path), {"a": snap("a", 1.0, step=1), "b": snap("b", 1.0, step=1)}.get)
    feed.start()
    try:
        gone = feed.watch("a", slow, group="closed tab")
        feed.changed("a")
        assert drawing.wait(5)
        feed.unwatch("a")
        closed.set()
        # the one feed thread draws b only after a's drawing has finished (its temporary file is there for a
        # moment while it is written): once b's file is there, a's must be gone for good
        other = feed.watch("b", render, group="open tab")
        assert wait_for(lambda: read(feed, other) is not None, timeout=5)
        assert files(feed) == [os.path.basename(file_of(feed, other))]
        assert not os.path.exists(file_of(feed, gone))
    finally:
        feed.close()


def test_a_panel_that_cannot_be_drawn_keeps_the_feed_going(tmp_path, capsys):
    latest = {"bad": snap("bad", 1.0), "good": snap("good", 1.0, step=3)}
    feed = Feed(str(tmp_path), latest.get)
    feed.start()
    try:
        feed.watch("bad", lambda s: 1 / 0)  # in the same file as the good one, which is still written
        good = feed.watch("good", render)
        assert wait_for(lambda: read(feed, good) == {"step": 3, "v": 1.0}, timeout=5)
    finally:
        feed.close()
    assert "could not be written" in capsys.readouterr().err


def test_folders_of_servers_that_are_gone_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "live" / f"{dead.pid}-abcd1234"
    stale.mkdir(parents=True)
    (stale / "x.json").write_text("{}")
    mine = tmp_path / "live" / f"{os.getpid()}-00000000"  # a live process's folder stays
    mine.mkdir()
    feed = Feed(str(tmp_path), lambda rid: None)
    feed.start()
    feed.close()
    assert not stale.exists() and mine.exists()


def test_the_pool_feeds_a_watched_run_while_it_trains_and_forgets_it_with_its_session(pool):  # noqa: F811
    if pool.feed is None:
        pool.start()
    assert pool.feed is not None, "the repository's static folder should be writable in tests"
    s = LiveSession(pool)
    s.ensure("r", spec())
    assert wait_for(lambda: built(s, "r"))
    address = s.watch("r", render)
    assert address is not None and address.startswith("app/static/live/")
    url, _, name = address.partition("#")
    path = os.path.join(pool.feed.static_root, url[len("app/static/") :])
    assert wait_for(lambda: os.path.exists(path), timeout=10)
    s.play(["r"])
    assert wait_for(lambda: json.load(open(path))["panels"][name]["step"] > 20, timeout=30)
    assert s.watch("nothing", render) is None  # not a run of this session
    s.close()
    assert not os.path.exists(path)
