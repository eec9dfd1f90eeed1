"""The live runner: pause/resume/step/stop/reset, divergence, budgets, the thread cap, bounded history."""

import dataclasses
import math
import time

import numpy as np
import pytest
import torch

from lab import runner as R
from lab.base import Config, GenerativeModel, REGISTRY, option
from lab.data import make_dataset
from lab.runner import History, Run, RunSpec, SessionRunner, fit


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    blow_up_at: int = option(0, "step at which the loss becomes nan (0: never)", min=0, max=10**9)
    sample_delay: float = option(0.0, "seconds of sleep per sample drawn (a slow sampler)", min=0.0, max=1.0)
    step_delay: float = option(0.0, "seconds of sleep per training step (a slow step, like EM over every point)", min=0.0, max=1.0)
    density_delay: float = option(0.0, "seconds of sleep per density grid (a costly bound, like a VAE's)", min=0.0, max=1.0)
    views_delay: float = option(0.0, "seconds of sleep per views() call (a costly family picture)", min=0.0, max=1.0)


class Toy(GenerativeModel):
    """A Gaussian with a learned mean: small and fast, with a switch that makes it diverge."""

    key, title, Config, has_log_prob, density_kind = "toy", "Toy Gaussian", ToyConfig, True, "exact"

    def _build(self):
        self.net = torch.nn.Linear(1, 2)
        self.optimizers = [torch.optim.SGD(self.net.parameters(), lr=self.config.lr)]
        self.n = 0

    def _mean(self):
        return self.net.bias

    def train_step(self, batch):
        time.sleep(self.config.step_delay)
        self.n += 1
        loss = ((batch - self._mean()) ** 2).sum(1).mean()
        self.optimizers[0].zero_grad()
        loss.backward()
        self.optimizers[0].step()
        if self.config.blow_up_at and self.n >= self.config.blow_up_at:
            return {"loss": float("nan")}
        return {"loss": loss.item()}

    def _sample_z(self, n, generator):
        time.sleep(self.config.sample_delay * n)
        return self._mean().detach() + torch.randn(n, 2, generator=generator)

    def _log_prob_z(self, z):
        return -0.5 * ((z - self._mean()) ** 2).sum(1) - math.log(2 * math.pi)

    def display_log_prob(self, x):
        time.sleep(self.config.density_delay)
        return super().display_log_prob(x)

    def views(self, **kw):
        time.sleep(self.config.views_delay)
        return {"step": self.n}


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    monkeypatch.setitem(REGISTRY, "toy", Toy)
    yield


def spec(**kw):
    base = dict(key="toy", dataset=make_dataset("moons"), n_train=500, config=ToyConfig(lr=0.01))
    base.update(kw)
    return RunSpec(**base)


def wait_for(pred, timeout=10.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_fit_respects_a_step_budget():
    run = fit(spec(max_steps=37))
    assert run.step == 37 and run.status == "done"


def test_divergence_stops_with_a_sentence():
    run = fit(spec(max_steps=100, config=ToyConfig(blow_up_at=12)))
    assert run.status == "diverged" and run.step == 12
    assert run.message == "diverged at step 12: loss was nan"


def test_pause_resume_step_stop_reset():
    r = SessionRunner()
    try:
        r.add("a", spec(), wait=True)
        assert r.snapshot("a")["step"] == 0 and r.snapshot("a")["status"] == "paused"
        r.step("a", 3)
        assert wait_for(lambda: r.snapshot("a")["step"] == 3)
        assert r.runs["a"].status == "paused"
        r.play("a")
        assert wait_for(lambda: r.runs["a"].step > 50)
        r.pause("a")  # waits for the slice under way (the runner's lock), then no step follows
        assert r.runs["a"].status == "paused"
        s2 = r.runs["a"].step
        time.sleep(0.3)
        assert r.runs["a"].step == s2  # paused means paused
        r.play("a")
        assert wait_for(lambda: r.runs["a"].step > s2 + 20)
        r.stop("a")
        assert r.runs["a"].status == "stopped"
        r.reset("a")
        assert r.runs["a"].step == 0 and r.runs["a"].status == "paused"
    finally:
        r.close()


def test_live_learning_rate_and_rebuild_on_change():
    r = SessionRunner()
    try:
        r.add("a", spec(), wait=True)
        model = r.runs["a"].model
        assert r.ensure("a", spec(config=ToyConfig(lr=0.05))) == "live"
        assert r.runs["a"].model is model and model.optimizers[0].param_groups[0]["lr"] == 0.05
        assert r.ensure("a", spec(config=ToyConfig(lr=0.05), seed=4)) == "rebuilt"
        assert r.ensure("a", spec(config=ToyConfig(lr=0.05), seed=4)) == "same"  # still building: no second build
        assert wait_for(lambda: "a" in r.runs)
        assert r.runs["a"].model is not model and r.runs["a"].spec.seed == 4
        assert r.ensure("a", spec(config=ToyConfig(lr=0.05), seed=4)) == "same"
    finally:
        r.close()


def test_sampler_settings_change_live_without_retraining():
    from lab.data import make_dataset

    r = SessionRunner()
    try:
        ds = make_dataset("moons")
        base = RunSpec("ddpm", ds, make_config_ddpm(), n_train=500)
        r.add("d", base, wait=True)
        r.step("d", 5)
        assert wait_for(lambda: r.runs["d"].step == 5)
        model = r.runs["d"].model
        assert r.ensure("d", RunSpec("ddpm", ds, make_config_ddpm(sampler="ddim", sample_steps=7), n_train=500)) == "live"
        assert r.runs["d"].model is model and r.runs["d"].step == 5
        assert model.config.sampler == "ddim" and model.config.sample_steps == 7
        assert r.ensure("d", RunSpec("ddpm", ds, make_config_ddpm(sampler="ddim", sample_steps=7, T=50), n_train=500)) == "rebuilt"
    finally:
        r.close()


def make_config_ddpm(**kw):
    from lab.base import get_model_class, make_config

    return make_config(get_model_class("ddpm").Config, kw)


def test_snapshots_and_metrics_arrive_while_training():
    r = SessionRunner(snapshot_interval=0.05, metrics_interval=0.2)
    try:
        r.add("a", spec(), wait=True)
        r.play("a")
        assert wait_for(lambda: r.snapshot("a")["step"] > 0 and "energy_distance" in r.snapshot("a")["latest_metrics"])
        s = r.snapshot("a")
        assert s["samples"].shape == (1000, 2) and s["density"]["log_prob"].shape == (64, 64)
        assert "loss" in s["losses"]
    finally:
        r.close()


def test_live_pictures_move_samples_every_time_and_the_density_at_most_every_interval():
    r = SessionRunner(snapshot_interval=0.02, metrics_interval=1e9, density_interval=1e9, overhead=1.0)
    try:
        r.add("a", spec(), wait=True)
        first = r.snapshot("a")
        r.play("a")
        assert wait_for(lambda: r.snapshot_count >= 8)
        assert wait_for(lambda: r.snapshot("a")["step"] > 0)
        live = [r.snapshot("a")]
        assert wait_for(lambda: r.snapshot("a")["step"] > live[0]["step"])
        live.append(r.snapshot("a"))
        # the samples of two live pictures differ; their density grid is one and the same (held back)
        assert not np.array_equal(live[0]["samples"], live[1]["samples"])
        assert live[1]["density"] is live[0]["density"]
        r.pause("a")
        r.step("a", 1)  # a paused run's picture is always fresh: its density is computed for its own weights
        assert wait_for(lambda: r.snapshot("a")["status"] == "paused" and r.snapshot("a")["step"] > live[1]["step"])
        done = r.snapshot("a")
        assert done["density"] is not live[1]["density"]
        assert not np.allclose(done["density"]["log_prob"], first["density"]["log_prob"])
    finally:
        r.close()


@pytest.mark.parametrize("views_delay, reused", [(0.03, True), (0.0, False)])
def test_a_costly_family_picture_comes_with_the_density_and_a_cheap_one_with_every_picture(views_delay, reused):
    r = SessionRunner(snapshot_interval=0.02, metrics_interval=1e9, density_interval=1e9, overhead=1.0)
    try:
        r.add("a", spec(config=ToyConfig(lr=0.01, views_delay=views_delay)), wait=True)
        r.play("a")
        live = []
        for _ in range(3):  # three live pictures at three different steps
            assert wait_for(lambda: r.snapshot("a")["step"] > (live[-1]["step"] if live else 0))
            live.append(r.snapshot("a"))
        if reused:  # a 30 ms views() is drawn once per density grid (here: held back), with its own time
            assert live[2]["views"] is live[1]["views"] and live[2]["views_time"] == live[1]["views_time"]
        else:  # a cheap one follows the weights on every picture
            assert live[2]["views"]["step"] == live[2]["step"] != live[1]["views"]["step"]
        r.pause("a")  # a paused run's pictures are all fresh
        assert wait_for(lambda: r.snapshot("a")["status"] == "paused" and r.snapshot("a")["views"]["step"] == r.runs["a"].step)
    finally:
        r.close()


def test_pause_shows_at_once_and_the_picture_catches_up_with_the_paused_weights():
    r = SessionRunner(snapshot_interval=10.0)  # live pictures rare: only the pause can bring the picture up to date
    try:
        r.add("a", spec(), wait=True)
        r.play("a")
        assert wait_for(lambda: r.runs["a"].step > 50)
        r.pause("a")
        assert r.snapshot("a")["status"] == "paused"  # no wait for the trainer
        assert wait_for(lambda: r.snapshot("a")["step"] == r.runs["a"].step > 50)
        # and its numbers are measured at the paused weights, not left from the last metrics while training
        steps, _ = r.snapshot("a")["metrics"]["energy_distance"]
        assert steps[-1] == r.runs["a"].step
    finally:
        r.close()


def test_with_many_panels_a_slow_sampler_draws_smaller_pictures():
    r = SessionRunner(snapshot_interval=0.01, metrics_interval=1e9, overhead_many=1.0, picture_seconds=0.005)
    try:
        r.add("slow", spec(config=ToyConfig(lr=0.01, sample_delay=1e-4)), wait=True)  # 500 samples: 50 ms
        for i in ("a", "b"):
            r.add(i, spec(), wait=True)
        r.play()
        assert wait_for(lambda: len(r.snapshot("slow")["samples"]) == 64, timeout=20)
        assert wait_for(lambda: all(len(r.snapshot(i)["samples"]) == 500 and r.snapshot(i)["step"] > 0 for i in "ab"))
        # the scoreboard's sampling speed still comes from a full-size draw (~0.1 ms per sample here)
        assert r.snapshot("slow")["sample_seconds_per_1000"] == pytest.approx(0.1, rel=0.5)
        r.pause()
        r.step("slow", 1)  # a paused run's picture is full size again
        assert wait_for(lambda: r.snapshot("slow")["status"] == "paused" and len(r.snapshot("slow")["samples"]) == 500)
    finally:
        r.close()


def test_pictures_spend_the_overhead_budget_and_no_more():
    """Training earns snapshot credit at overhead_many; pictures spend it. A costly picture (here ~25 ms
    against ~1 ms for the others) overdraws once and is paid back, so the share of time spent on
    pictures stays at the budget (not far below it, not above it plus one picture and the saved-up cap)."""
    budget = 0.2
    r = SessionRunner(snapshot_interval=0.0, metrics_interval=1e9, overhead_many=budget, picture_seconds=1.0)
    try:
        r.add("slow", spec(config=ToyConfig(lr=0.01, sample_delay=5e-5)), wait=True)  # 500 samples: 25 ms
        for i in ("a", "b"):
            r.add(i, spec(), wait=True)
        spent0, trained0 = r.snapshot_seconds, r.train_wall
        r.play()
        time.sleep(3.0)
        r.pause()
        spent, trained = r.snapshot_seconds - spent0, r.train_wall - trained0
        assert trained > 0.5
        assert spent <= budget * trained + 0.1 + 0.06  # + the credit cap + one overdrawn picture (with slack)
        assert spent >= 0.5 * budget * trained  # the budget is used, not left idle behind a costly picture
        assert all(r.snapshot(i)["step"] > 0 for i in ("slow", "a", "b"))
    finally:
        r.close()


def test_diverged_run_in_the_runner_shows_status():
    r = SessionRunner()
    try:
        r.add("a", spec(config=ToyConfig(blow_up_at=5)), wait=True)
        r.play("a")
        assert wait_for(lambda: r.snapshot("a")["status"] == "diverged")
        assert r.snapshot("a")["message"].startswith("diverged at step 5")
    finally:
        r.close()


def test_thread_cap_queues_extra_sessions():
    R.set_trainer_cap(1)
    a, b = SessionRunner(), SessionRunner()
    try:
        a.add("x", spec(), wait=True)
        b.add("x", spec(), wait=True)
        a.play()
        assert wait_for(lambda: a.runs["x"].step > 0)
        b.play()
        assert wait_for(lambda: b.state == "queued")
        assert b.runs["x"].step == 0
        a.pause()
        assert wait_for(lambda: b.runs["x"].step > 0)  # the slot frees up when a is idle
    finally:
        a.close(), b.close()
        R.set_trainer_cap(2)


def test_thread_ends_when_the_session_is_gone():
    alive = {"v": True}
    r = SessionRunner(alive=lambda: alive["v"])
    r.add("a", spec(), wait=True)
    r.play()
    assert wait_for(lambda: r.thread_alive and r.runs["a"].step > 0)
    alive["v"] = False
    assert wait_for(lambda: not r.thread_alive, timeout=5)


def test_add_builds_in_the_background_and_play_waits_for_it():
    r = SessionRunner()
    try:
        r.add("a", spec())
        r.play("a")  # asked before the build finished: starts when it is built
        assert wait_for(lambda: "a" in r.runs and r.runs["a"].step > 0)
        assert not r.building
        r.add("bad", spec(config=None, n_train=-5))
        assert wait_for(lambda: (r.snapshot("bad") or {}).get("status") == "error")
        assert r.snapshot("bad")["message"].startswith("could not build toy")
    finally:
        r.close()


def test_history_is_bounded_but_spans_the_run():
    h = History(maxlen=100)
    for i in range(100_000):
        h.add(i, {"loss": float(i)})
    assert len(h) <= 100
    steps, vals = h.arrays()["loss"]
    assert steps[0] == 0 and steps[-1] > 90_000


def test_early_stopping_restores_the_best_weights():
    """On 30 points a KDE-free exact family overfits nothing here, but the mechanism must keep the best
    validated weights: train the toy with a huge lr so later steps are worse than earlier ones."""
    run = fit(spec(max_steps=400, config=ToyConfig(lr=0.9), n_train=200))
    assert run.best_step <= run.step
    val = float(-run.model.log_prob(run.val_x).mean())
    assert val <= run.best_val + 1e-6


def test_uploaded_weights_become_a_run(tmp_path):
    from lab.base import model_from_bytes, model_to_bytes

    trained = fit(spec(max_steps=200))
    model = model_from_bytes(model_to_bytes(trained.model))
    r = SessionRunner()
    try:
        r.add_model("up", spec(), model)
        assert r.runs["up"].status == "paused" and r.snapshot("up")["message"] == "loaded from uploaded weights"
        assert torch.allclose(r.runs["up"].model.sample(20, 1), trained.model.sample(20, 1))
    finally:
        r.close()


def test_a_page_gets_the_lock_before_the_trainer_takes_another_slice():
    """The trainer yields to a waiting page thread (many commands in a row all get through), the count of
    waiting threads returns to zero, and training goes on afterwards. Latency: bench/browser_responsiveness.py."""
    r = SessionRunner()
    try:
        r.add("a", spec(), wait=True)
        r.play("a")
        assert wait_for(lambda: r.runs["a"].step > 10)
        for k in range(30):
            r.set_lr("a", 0.01 + k * 1e-4)  # takes the lock
        assert r.runs["a"].model.config.lr == pytest.approx(0.01 + 29e-4)
        assert r._lock.waiting == 0
        step = r.runs["a"].step
        assert wait_for(lambda: r.runs["a"].step > step + 10)  # and training goes on
    finally:
        r.close()


def test_a_slow_step_trains_every_round_while_pages_keep_asking_for_the_lock():
    """Every slice takes at least one step: a step longer than the slice (EM over every point) used to
    lose whole rounds whenever a page thread was waiting, and its panel stood still."""
    import threading

    r = SessionRunner(metrics_interval=1e9)
    stop = threading.Event()

    def page():  # a busy page: always about to take the runner's lock
        while not stop.is_set():
            with r._lock:
                time.sleep(0.002)

    try:
        r.add("slow", spec(config=ToyConfig(lr=0.01, step_delay=0.02)), wait=True)
        for i in ("a", "b"):
            r.add(i, spec(), wait=True)
        r.play()
        assert wait_for(lambda: r.runs["slow"].step > 0)
        threading.Thread(target=page, daemon=True).start()
        step = r.runs["slow"].step
        time.sleep(1.5)
        # a round is one slow step plus two short slices and pictures: ~0.1 s, so ~15 rounds; 5 is a wide margin
        assert r.runs["slow"].step - step >= 5
    finally:
        stop.set()
        r.close()


def test_a_speed_limit_slows_training_and_every_step_still_gets_its_picture():
    """At 10 steps per second a toy that could do thousands takes ~10 (the first at once); its panel
    moves with each step (idle time pays for the pictures); lifting the limit lets it run free."""
    r = SessionRunner(metrics_interval=1e9)
    try:
        r.add("a", spec(), wait=True)
        r.set_speed("a", 10.0)
        r.play("a")
        seen, t0 = set(), time.time()
        while time.time() - t0 < 1.5:
            seen.add(r.snapshot("a")["step"])
            time.sleep(0.01)
        steps = r.runs["a"].step
        assert 5 <= steps <= 1.5 * 10 + 1 + 3  # the limit is never exceeded (a little slack for the last step)
        assert len(seen) >= 0.6 * steps  # most steps were drawn
        assert r.snapshot("a")["steps_per_second"] <= 10.0
        r.set_speed("a", None)
        assert wait_for(lambda: r.runs["a"].step > steps + 200)
        with pytest.raises(ValueError):
            r.set_speed("a", 0.0)
    finally:
        r.close()


def test_a_costly_density_grid_takes_at_most_half_of_the_pictures_budget():
    """A 30 ms grid at a 10 % picture budget is redrawn about every 0.6 s, not at every 0.05 s interval
    the budget could pay for: the other half of the budget keeps the samples moving between grids."""
    r = SessionRunner(snapshot_interval=0.02, metrics_interval=1e9, density_interval=0.05, overhead=0.1)
    try:
        r.add("a", spec(config=ToyConfig(lr=0.01, density_delay=0.03)), wait=True)
        r.play("a")
        grids, pictures, last, t0 = 0, 0, None, time.time()
        while time.time() - t0 < 2.5:
            snap = r.snapshot("a")
            if last is None or snap["time"] != last["time"]:
                pictures += 1
                grids += last is None or snap["density"] is not last["density"]
                last = snap
            time.sleep(0.005)
        assert pictures >= 4 * grids, (pictures, grids)
    finally:
        r.close()
