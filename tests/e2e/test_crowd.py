"""Ten browser sessions on one real server: each trains its own runs, none sees another's, and closed
sessions' runs stop (the pool's feed files, one per session with a watched run, show what the server still holds)."""

import glob
import os
import re
import time

from tests.e2e.conftest import ROOT, cpu_seconds, kill_group, start_server
from tests.e2e.test_app import panel_steps, wait_until
from tests.e2e.test_lifecycle import workers_of

FAMILIES = ["ae", "gan", "ar"]
DATA = ["moons", "8gaussians", "rings"]


def feed_files(server_pid: int) -> list[str]:
    return glob.glob(os.path.join(ROOT, "static", "live", f"{server_pid}-*", "*.json"))


def test_ten_sessions_train_apart_and_closed_ones_stop(browser):
    proc, url = start_server()
    sessions = []
    try:
        for i in range(10):
            ctx = browser.new_context(viewport={"width": 1200, "height": 900})
            pg = ctx.new_page()
            fed: set[str] = set()
            pg.on(
                "requestfinished", lambda r, fed=fed: fed.add(r.url) if "/app/static/live/" in r.url else None
            )
            family, data = FAMILIES[i % 3], DATA[i % 3]
            pg.goto(
                f"{url}/?compare.families={family}&compare.data={data}&compare.seconds=0&compare.seed={i}",
                wait_until="commit",
            )
            sessions.append((ctx, pg, family, data, fed))
        for ctx, pg, family, data, fed in sessions:
            pg.get_by_role("heading", name="Compare families").wait_for(timeout=120_000)
            assert wait_until(lambda: family in panel_steps(pg), timeout=240), (
                f"{family}'s panel never appeared"
            )
            pg.get_by_role("button", name=re.compile("Train")).click()
        for ctx, pg, family, data, fed in sessions:  # every session trains; none is queued behind another
            assert wait_until(lambda: panel_steps(pg).get(family, 0) > 0, timeout=240), (
                f"{family} did not train"
            )
            assert set(panel_steps(pg)) == {family}  # only its own run
        assert wait_until(lambda: all(fed for *_, fed in sessions), timeout=60), (
            "a panel never fetched its feed"
        )
        urls = [fed for *_, fed in sessions]
        assert all(not (a & b) for i, a in enumerate(urls) for b in urls[i + 1 :])  # nobody fetches another's
        assert len(feed_files(proc.pid)) == 10

        for ctx, *_ in sessions[:5]:  # five tabs closed: their runs go, the others keep training
            ctx.close()
        assert wait_until(lambda: len(feed_files(proc.pid)) == 5, timeout=30), feed_files(proc.pid)
        ctx, pg, family, *_ = sessions[-1]
        before = panel_steps(pg).get(family, 0)
        assert wait_until(lambda: panel_steps(pg).get(family, 0) > before, timeout=60)

        for ctx, *_ in sessions[5:]:
            ctx.close()
        sessions.clear()
        assert wait_until(lambda: not feed_files(proc.pid), timeout=30)
        workers = workers_of(proc.pid)
        assert workers

        def idle() -> bool:  # the workers' CPU over one second: nothing left to train
            c0 = cpu_seconds(workers)
            time.sleep(1.0)
            return cpu_seconds(workers) - c0 < 0.1

        assert wait_until(idle, timeout=30), "the workers kept working after every session closed"
    finally:
        for ctx, *_ in sessions:
            ctx.close()
        kill_group(proc)
