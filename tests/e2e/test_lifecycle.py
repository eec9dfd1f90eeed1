"""Trainer workers start with the first run and end with the server: SIGTERM, and SIGKILL of the server alone."""

import os
import re
import signal
import time

import pytest

from tests.e2e.conftest import kill_group, start_server


def children(pid: int) -> list[int]:
    """Processes whose parent is pid (from /proc)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(d))
    return out


def workers_of(pid: int) -> list[int]:
    found = []
    for c in children(pid):
        try:
            with open(f"/proc/{c}/cmdline", "rb") as f:
                if b"lab.live.worker" in f.read():
                    found.append(c)
        except OSError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(pred, timeout: float) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_the_server(browser, sig):
    proc, url = start_server({"LAB_WORKERS": "2"})
    try:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.goto(url + "/compare?compare.families=gmm,flow")
        page.get_by_role("heading", name="Compare families").wait_for(timeout=60_000)
        page.get_by_role("button", name=re.compile("Train")).click()
        assert wait_until(lambda: len(workers_of(proc.pid)) == 2, 60), (
            "the workers did not start with the first run"
        )
        page.get_by_text(re.compile(r"flow · step [1-9]")).first.wait_for(timeout=60_000)  # they train
        workers = workers_of(proc.pid)
        ctx.close()
        os.kill(proc.pid, sig)  # the server alone, not its group
        assert wait_until(lambda: not any(alive(w) for w in workers), 10), f"workers left after {sig.name}"
    finally:
        kill_group(proc)
