"""The GAN page's seeds view: the sweep it builds, the collapse rate and its standard error, members with samples."""

import math
import time

import numpy as np
import pytest

from lab.data import make_dataset
from lab.gan import GANConfig
from lab.gan_seeds import MemberResult, SeedsJob, collapse_summary, seeds_sweep


def test_the_sweep_rebuilds_the_pages_config_for_every_seed():
    cfg = GANConfig(loss="minimax", batch_norm=True, lr=1e-3, r1_gamma=0.0, activation="leaky_relu")
    sw = seeds_sweep(make_dataset("8gaussians"), cfg, list(range(5, 21)), steps=300)
    assert [m.seed for m in sw.members] == list(range(5, 21)) and sw.max_steps == 300
    assert set(sw.grid) == {"loss", "batch_norm", "lr", "r1_gamma", "activation"}  # the non-default fields
    for m in sw.members[:3]:
        spec = sw.spec(m)
        assert spec.config == cfg and spec.seed == m.seed and spec.key == "gan" and spec.views is False
    assert seeds_sweep(make_dataset("moons"), GANConfig(), [0], 10).grid == {}
    with pytest.raises(ValueError, match="GAN config"):
        seeds_sweep(make_dataset("moons"), object(), [0], 10)


def _result(seed, modes, n_modes=8, status="done", diverged=False):
    row = {"modes": modes, "n_modes": n_modes, "status": status, "diverged": diverged, "error": ""}
    return MemberResult(seed, row, None)


def test_collapse_rate_and_its_standard_error():
    res = [_result(i, 8) for i in range(12)] + [_result(12 + i, 6) for i in range(4)]
    s = collapse_summary(res, total=20, elapsed=8.0)
    p, n = 4 / 16, 16
    assert (s.done, s.total, s.evaluated, s.collapsed) == (16, 20, 16, 4)
    assert s.rate == pytest.approx(p)
    assert s.se == pytest.approx(math.sqrt(p * (1 - p) * n / (n - 1) / n))  # sample std (ddof 1) / sqrt(n)
    assert s.left == pytest.approx(2.0) and s.progress == pytest.approx(0.8)
    # members without a mode count (moons, or a failed member) are not in the rate
    s = collapse_summary([_result(0, None, None), _result(1, None, None, status="failed")], total=2)
    assert s.rate is None and s.evaluated == 0 and s.failed == 1 and s.left == 0.0


def _wait(pred, timeout=240.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_a_seeds_job_runs_on_the_pool_with_samples_and_cancels():
    from lab.live.pool import WorkerPool

    pool = WorkerPool(1)
    pool.start()
    try:
        sw = seeds_sweep(make_dataset("8gaussians"), GANConfig(hidden=32), [3, 1, 2], steps=20, n_eval=300)
        job = SeedsJob(sw, pool=pool, n_samples=40).start()
        assert _wait(lambda: job.done), "the sweep did not finish"
        assert not job.error
        res = job.results()
        assert [r.seed for r in res] == [1, 2, 3]
        assert all(r.samples.shape == (40, 2) and np.isfinite(r.samples).all() for r in res)
        assert all(r.row["steps"] == 20 and r.n_modes == 8 and r.collapsed is not None for r in res)
        s = job.summary()
        assert s.done == s.total == 3 and s.evaluated == 3
        assert {t["metric"] for t in job.table()} >= {"modes", "high_quality", "energy_distance"}

        slow = seeds_sweep(make_dataset("8gaussians"), GANConfig(), list(range(16)), steps=10**6)
        job = SeedsJob(slow, pool=pool).start()
        time.sleep(1.0)
        job.cancel()
        assert _wait(lambda: job.done, 30), "cancel did not end the sweep"
        assert len(job.results()) < 16

        gone = SeedsJob(sw, pool=pool, owner=lambda: False).start()  # the page's session closed
        assert _wait(lambda: gone.done, 30)
        assert all(r.row["status"] == "failed" and "closed" in r.error for r in gone.results())
    finally:
        pool.close()


def test_the_small_multiples_mark_the_collapsed_seeds():
    from lab.viz import gan as gv

    ring = make_dataset("8gaussians")
    res = [
        MemberResult(0, {"modes": 8, "n_modes": 8, "error": ""}, ring.sample(50, 0)),
        MemberResult(1, {"modes": 5, "n_modes": 8, "error": ""}, ring.sample(50, 1)),
        MemberResult(2, {"modes": None, "n_modes": None, "error": "the trainer stopped"}, None),
    ]
    fig = gv.seed_clouds_figure(res, ring.bounds(), ring.sample(100, 2), cols=2)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["seed 0: 8/8", "seed 1: 5/8 ✗", "seed 2: failed"]
    colours = [t.marker.color for t in fig.data if len(t.x) == 50]
    assert colours[0] != colours[1]  # a collapsed seed's cloud is drawn in another colour
    assert gv.seed_clouds_figure([]).layout.title.text == "Seeds"
