"""The worker-process engine: a worker's rounds in-process (fake socket, ticking clock), then the real pool."""

import os
import signal
import time
from collections import deque

import numpy as np
import pytest

from lab.data import make_dataset
from lab.live.messages import Command, Picture, Reply
from lab.live.pool import WorkerPool
from lab.live.session import JobError, LiveSession
from lab.live.worker import Worker
from lab.spec import RunSpec
from tests.toy_family import ToyConfig

MOONS = make_dataset("moons")


def spec(**kw) -> RunSpec:
    config = kw.pop("config", ToyConfig(lr=0.01))
    return RunSpec(**{"key": "toy", "dataset": MOONS, "n_train": 500, "config": config, **kw})


def wait_for(pred, timeout: float = 60.0) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------------------------------------
# One worker, in this process: its rounds are deterministic under a ticking clock
# ---------------------------------------------------------------------------------------------


class FakeConn:
    def __init__(self):
        self.inbox: deque = deque()
        self.outbox: list = []

    def poll(self, timeout=0.0):
        return bool(self.inbox)

    def recv(self):
        return self.inbox.popleft()

    def send(self, msg):
        self.outbox.append(msg)


class TickingClock:
    """Moves 1 ms on every reading: a slice of 50 ms is about 50 readings, whatever the machine's speed."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 0.001
        return self.t


def worker_with(*commands) -> tuple[Worker, FakeConn]:
    conn = FakeConn()
    w = Worker(conn, clock=TickingClock())
    conn.inbox.extend(commands)
    w.poll()
    while w.builds:
        w.build_next()
    return w, conn


def pictures(conn, run_id):
    return [m.snapshot for m in conn.outbox if isinstance(m, Picture) and m.snapshot.run_id == run_id]


def steps(w, run_id):
    return w.actors[run_id].run.step


def test_sessions_share_a_worker_equally_however_many_runs_each_has():
    adds = [
        Command("add", f"a/{i}", "a", {"spec": spec(seed=i), "start": True, "many": True}) for i in range(9)
    ]
    w, conn = worker_with(*adds, Command("add", "b/0", "b", {"spec": spec(), "start": True}))
    for _ in range(20):
        w.train_round()
    a = sum(steps(w, f"a/{i}") for i in range(9))
    b = steps(w, "b/0")
    assert 0.7 < b / a < 1.4, (a, b)  # one run of one session ~ nine runs of the other
    assert all(steps(w, f"a/{i}") > 0 for i in range(9))


def test_a_newcomers_runs_take_their_first_steps_before_the_crowd_goes_on():
    crowd = [
        Command("add", f"c{k}/{i}", f"c{k}", {"spec": spec(seed=i), "start": True, "many": True})
        for k in range(5)
        for i in range(9)
    ]
    w, conn = worker_with(*crowd)
    for _ in range(40):
        w.train_round()
    assert all(steps(w, f"c{k}/{i}") >= w.warm_steps for k in range(5) for i in range(9))
    conn.inbox.extend(
        Command("add", f"new/{i}", "new", {"spec": spec(seed=i), "start": True, "many": True})
        for i in range(9)
    )
    w.poll()
    while w.builds:
        w.build_next()
    for _ in range(12):  # at its fair sixth of the worker, 40 rounds leave them at step 14-16
        w.train_round()
    assert all(steps(w, f"new/{i}") >= w.warm_steps for i in range(9)), [
        steps(w, f"new/{i}") for i in range(9)
    ]
    # and then it shares like everyone else: the crowd's sessions all train on
    before = {k: sum(steps(w, f"c{k}/{i}") for i in range(9)) for k in range(5)}
    for _ in range(20):
        w.train_round()
    assert all(sum(steps(w, f"c{k}/{i}") for i in range(9)) > before[k] for k in range(5))


def test_sessions_starting_together_get_their_first_steps_first_come_first_served():
    w, conn = worker_with(
        *[
            Command("add", f"a/{i}", "a", {"spec": spec(seed=i), "start": True, "many": True})
            for i in range(9)
        ]
    )
    w.train_round()  # a starts first
    conn.inbox.extend(
        Command("add", f"b/{i}", "b", {"spec": spec(seed=i), "start": True, "many": True}) for i in range(9)
    )
    w.poll()
    while w.builds:
        w.build_next()
    while min(steps(w, f"a/{i}") for i in range(9)) < w.warm_steps:
        w.train_round()
    # b waited for a's first steps (it got at most the end of the round in which a finished)
    assert max(steps(w, f"b/{i}") for i in range(9)) < w.warm_steps // 2


def test_a_family_that_raises_ends_its_run_with_a_sentence_and_the_next_run_trains():
    w, conn = worker_with(
        Command("add", "s/bad", "s", {"spec": spec(config=ToyConfig(raise_at=5)), "start": True}),
        Command("add", "s/good", "s", {"spec": spec(), "start": True}),
    )
    for _ in range(5):
        w.train_round()
    last = pictures(conn, "s/bad")[-1]
    assert last.status == "stopped"
    assert last.message == "training stopped at step 4: RuntimeError: the toy broke on purpose"
    before = steps(w, "s/good")
    w.train_round()
    assert steps(w, "s/good") > before > 0


def test_divergence_pause_step_and_a_still_picture():
    w, conn = worker_with(
        Command("add", "s/nan", "s", {"spec": spec(config=ToyConfig(blow_up_at=12)), "start": True}),
        Command("add", "s/ok", "s", {"spec": spec(), "start": True}),
    )
    for _ in range(3):
        w.train_round()
    assert pictures(conn, "s/nan")[-1].status == "diverged"
    assert pictures(conn, "s/nan")[-1].message == "diverged at step 12: loss was nan"
    conn.inbox.append(Command("pause", "s/ok", "s", seq=5))
    w.poll()
    w.train_round()
    paused = pictures(conn, "s/ok")[-1]
    assert (
        paused.status == "paused" and paused.step == steps(w, "s/ok") and paused.latest_metrics
    )  # a still has its numbers
    conn.inbox.append(Command("step", "s/ok", "s", {"n": 3}))
    w.poll()
    w.train_round()
    assert pictures(conn, "s/ok")[-1].step == paused.step + 3 and steps(w, "s/ok") == paused.step + 3
    w.train_round()
    assert steps(w, "s/ok") == paused.step + 3  # paused stays paused


def test_a_picture_sends_only_what_changed():
    w, conn = worker_with(Command("add", "s/r", "s", {"spec": spec(), "start": True}))
    for _ in range(30):
        w.train_round()
    reused = [m.reuse for m in conn.outbox if isinstance(m, Picture)]
    assert any("density" in r for r in reused) and any("density" not in r for r in reused)
    assert all(isinstance(m.snapshot.samples, np.ndarray) for m in conn.outbox if isinstance(m, Picture))


def test_jobs_answer_and_an_unknown_job_is_a_sentence():
    w, conn = worker_with(Command("add", "s/r", "s", {"spec": spec()}))
    x = np.zeros((4, 2))
    conn.inbox.extend(
        [
            Command("job", "s/r", "s", {"name": "log_prob", "kwargs": {"x": x}}, request=7),
            Command("job", "s/r", "s", {"name": "os.system", "kwargs": {}}, request=8),
        ]
    )
    w.poll()
    replies = {m.request: m for m in conn.outbox if isinstance(m, Reply)}
    assert replies[7].value.shape == (4,) and np.isfinite(replies[7].value).all()
    assert replies[8].error == "ValueError: there is no job 'os.system'"


def test_a_measurement_trains_to_its_budget_and_answers_with_its_row():
    w, conn = worker_with(
        Command(
            "measure",
            "sweep/1",
            "sweep",
            {"spec": spec(max_steps=40), "evaluate": "evaluate", "kwargs": {"n_eval": 200}},
            request=3,
        )
    )
    for _ in range(10):
        w.train_round()
    (reply,) = [m for m in conn.outbox if isinstance(m, Reply)]
    assert reply.request == 3 and reply.value["steps"] == 40 and "energy_distance" in reply.value["metrics"]
    assert "sweep/1" not in w.actors  # a member is gone once measured
    assert not [m for m in conn.outbox if isinstance(m, Picture)]  # and it draws no pictures


# ---------------------------------------------------------------------------------------------
# The real pool: trainer processes
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    old = os.environ.get("LAB_WORKER_IMPORTS")
    os.environ["LAB_WORKER_IMPORTS"] = "tests.toy_family"
    p = WorkerPool(1)
    yield p
    p.close()
    if old is None:
        os.environ.pop("LAB_WORKER_IMPORTS")
    else:
        os.environ["LAB_WORKER_IMPORTS"] = old


def built(s, rid):
    snap = s.snapshot(rid)
    return snap is not None and snap.status != "building"


def test_two_sessions_never_see_each_others_runs(pool):
    one, two = LiveSession(pool), LiveSession(pool)
    one.ensure("r", spec(seed=1))
    two.ensure("r", spec(seed=2))
    assert wait_for(lambda: built(one, "r") and built(two, "r"))
    assert one.ids == ["r"] and two.ids == ["r"]
    assert not np.allclose(one.snapshot("r").samples, two.snapshot("r").samples)
    one.play()
    assert wait_for(lambda: one.snapshot("r").step > 20)
    assert two.snapshot("r").step == 0  # the other session's run was not started
    one.close()
    assert one.ids == [] and two.ids == ["r"]
    two.close()


def test_commands_answer_and_settings_change_live_or_rebuild(pool):
    s = LiveSession(pool)
    assert s.ensure("r", spec()) == "new"
    assert wait_for(lambda: built(s, "r"))
    s.play(["r"])
    assert s.snapshot("r").status == "running"  # said at once
    assert wait_for(lambda: s.snapshot("r").step > 10)
    s.pause(["r"])
    assert s.snapshot("r").status == "paused"  # said at once, before the worker answers
    assert wait_for(lambda: not s.busy)
    paused = s.snapshot("r")
    assert paused.status == "paused" and paused.latest_metrics
    s.step(["r"], 5)
    assert wait_for(lambda: s.snapshot("r").step == paused.step + 5)
    assert s.ensure("r", spec(config=ToyConfig(lr=0.02))) == "live"
    assert s.ensure("r", spec(config=ToyConfig(lr=0.02, temperature=3.0))) == "live"
    assert wait_for(lambda: s.call("r", "info")["config"].temperature == 3.0)
    assert s.snapshot("r").step >= paused.step + 5  # no retraining
    assert s.ensure("r", spec(seed=9, config=ToyConfig(lr=0.02, temperature=3.0))) == "rebuilt"
    assert wait_for(lambda: built(s, "r") and s.snapshot("r").step == 0)
    s.set_speed(["r"], 5.0)
    assert s.speed("r") == 5.0
    with pytest.raises(ValueError):
        s.set_speed(["r"], float("nan"))
    s.close()


def test_uploaded_weights_become_a_run_and_the_weights_job_is_taken_between_steps(pool):
    s = LiveSession(pool)
    s.add("trained", spec(max_steps=200), start=True)
    assert wait_for(lambda: s.snapshot("trained").status == "done")
    raw = s.weights("trained")
    s.add("up", spec(), weights=raw)
    assert wait_for(lambda: built(s, "up"))
    assert s.snapshot("up").message == "loaded from uploaded weights"
    x = np.array([[0.0, 0.0], [1.0, 0.5]])
    assert np.allclose(s.call("up", "log_prob", x=x), s.call("trained", "log_prob", x=x))
    with pytest.raises(JobError):
        s.call("nothing", "log_prob", x=x)
    s.close()


def test_a_closed_browser_session_frees_its_runs(pool):
    alive = {"v": True}
    s = LiveSession(pool, alive=lambda: alive["v"])
    s.add("r", spec(), start=True)
    assert wait_for(lambda: s.snapshot("r") is not None and s.snapshot("r").step > 0)
    alive["v"] = False
    assert wait_for(lambda: not s.ids, timeout=10)
    assert s.id not in pool.sessions


def test_a_worker_killed_from_outside_is_replaced_and_its_runs_say_so(pool):
    s = LiveSession(pool)
    s.add("r", spec(), start=True)
    assert wait_for(lambda: s.snapshot("r").step > 0)
    (pid,) = pool.pids()
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: s.snapshot("r").status == "stopped", timeout=15)
    assert (
        s.snapshot("r").message
        == "the trainer process stopped (exit code -9); press Reset to train this run again"
    )
    assert not s.busy  # a frozen panel would keep polling
    assert wait_for(lambda: pool.pids() and pool.pids()[0] != pid)
    s.reset(["r"])
    s.play(["r"])
    assert wait_for(lambda: s.snapshot("r").step > 0)  # the new worker trains it
    s.close()


def test_builds_go_to_the_session_with_the_fewest_built_runs():
    conn = FakeConn()
    w = Worker(conn, clock=TickingClock())
    conn.inbox.extend([Command("add", f"a/{i}", "a", {"spec": spec(seed=i)}) for i in range(5)])
    conn.inbox.append(Command("add", "b/0", "b", {"spec": spec()}))
    w.poll()
    w.build_next()
    w.build_next()
    assert w.actors["b/0"].run is not None  # second, not sixth
    assert sum(w.actors[f"a/{i}"].run is not None for i in range(5)) == 1


def test_a_wall_clock_budget_ends_every_run_on_time_and_pausing_stops_its_clock():
    """'Finish in N seconds': each run counts the wall time it spends running (sharing the worker), not its
    own training time; a paused run's clock stands still."""
    adds = [
        Command("add", f"s/{i}", "s", {"spec": spec(seed=i, max_wall_seconds=1.0), "start": True})
        for i in range(3)
    ]
    w, conn = worker_with(*adds)
    conn.inbox.append(Command("pause", "s/2", "s"))
    w.poll()
    for _ in range(60):
        w.train_round()
    for i in (0, 1):
        last = pictures(conn, f"s/{i}")[-1]
        assert last.status == "done" and last.message.startswith("finished on time:") and last.progress == 1.0
        assert 1.0 <= w.actors[f"s/{i}"].wall < 1.2
    assert w.actors["s/2"].wall == 0.0 and w.actors["s/2"].run.status == "paused"


def test_live_views_refresh_less_often_when_many_sessions_watch():
    p = WorkerPool(1)  # never started: sessions are only records here
    for k in range(2):
        p.open_session(f"s{k}", lambda: True)
    assert p.crowding() == 1.0
    for k in range(2, 10):
        p.open_session(f"s{k}", lambda: True)
    assert p.crowding() == 5.0
    p.close_session("s0")
    assert p.crowding() == 4.5


def test_sessions_closing_together_give_memory_back_once(monkeypatch):
    import lab.live.worker as worker_module

    calls = []
    monkeypatch.setattr(worker_module, "release_memory", lambda: calls.append(1))
    w, conn = worker_with(
        *[Command("add", f"s{k}/0", f"s{k}", {"spec": spec(), "start": True}) for k in range(5)]
    )
    conn.inbox.extend(Command("remove_session", session=f"s{k}") for k in range(5))
    w.poll()
    assert not w.actors and len(calls) == 1  # a collection each took seconds when twenty tabs closed
