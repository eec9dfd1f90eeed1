"""Batched members (lab/batched.py): with each member's own generators a batched member is its solo run (to
float rounding); with one shared stream it follows the same law; the sweep's --batched path gives the rows
the worker pool gives."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from lab import cli
from lab.base import get_model_class, make_config
from lab.batched import Draws, make_group, train_group, unsupported
from lab.data import make_dataset
from lab.run import Run, fit
from lab.spec import RunSpec

DATA = make_dataset("8gaussians")


def _specs(key: str, seeds, steps: int, **settings) -> list[RunSpec]:
    config = make_config(get_model_class(key).Config, settings)
    return [RunSpec(key, DATA, config, seed=s, n_train=1000, max_steps=steps, views=False) for s in seeds]


def _max_gap(a, b) -> float:
    wa, wb = a.model.weights(), b.model.weights()
    assert wa.keys() == wb.keys()
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


@pytest.mark.parametrize(
    "key, steps, settings, tol",
    [
        # the GAN's game amplifies rounding (batched matrix products sum in another order): ~1e-7 after
        # one step, ~1e-5 after 20; ten steps stay far below any real difference (an lr step is 2e-3)
        ("gan", 10, {}, 1e-5),
        ("gan", 10, {"loss": "minimax", "pack": 2, "d_steps": 2, "r1_gamma": 0.0, "lr_half_life": 5}, 1e-5),
        ("ddpm", 30, {}, 1e-6),
        ("ddpm", 30, {"prediction": "eps", "hidden": 32, "ema_decay": 0.0}, 1e-6),
    ],
)
def test_a_batched_member_is_its_solo_run(key, steps, settings, tol):
    torch.set_num_threads(1)
    specs = _specs(key, (0, 3, 7), steps, **settings)
    solo = [fit(s) for s in specs]
    batched = train_group(specs, rng="member")
    for a, b in zip(solo, batched):
        assert b.step == a.step == steps and b.status == "done"
        assert _max_gap(a, b) < tol, (a.spec.seed, _max_gap(a, b))
    # and the members did differ from each other: the test compares something
    assert _max_gap(batched[0], batched[1]) > 1e-3
    # a different seed's solo run is far from a member: the gap above is not a loose tolerance
    assert _max_gap(solo[0], batched[1]) > 100 * tol


def test_shared_draws_are_independent_standard_normals_per_member():
    seeds = list(range(64))
    d = Draws([torch.Generator() for _ in seeds], torch.device("cpu"), "shared", 0, seeds)
    x = d.randn(4000).numpy()  # [64, 4000]
    assert x.shape == (64, 4000)
    # each member's numbers are N(0, 1): a KS test per member (64 tests at 1e-3)
    assert min(sps.kstest(row, "norm").pvalue for row in x) > 1e-4
    # members are independent of one another: correlations at the 1/sqrt(n) noise level
    c = np.corrcoef(x)[np.triu_indices(64, 1)]
    assert np.abs(c).max() < 5 / math.sqrt(4000)
    idx = d.randint(10, 5000).numpy()
    assert idx.min() == 0 and idx.max() == 9 and sps.chisquare(np.bincount(idx.ravel())).pvalue > 1e-4
    # a member's stream depends on the seed list (and the stream), so two sweeps of the same seeds agree
    again = Draws([torch.Generator() for _ in seeds], torch.device("cpu"), "shared", 0, seeds)
    assert torch.equal(again.randn(4000), torch.as_tensor(x))


def test_shared_draws_give_the_same_law_as_solo_runs():
    """The loss over training of members with shared draws and of members with their own (= solo runs):
    two samples of the same distribution (a two-sample KS test and a t-test on the members' mean losses)."""
    torch.set_num_threads(1)
    specs = _specs("ddpm", range(32), 60, hidden=32, x_embedding=0, time_dim=16)
    laws = {}
    for rng in ("member", "shared"):
        keep: list = []
        train_group(specs, rng=rng, keep=keep)
        laws[rng] = keep[0].loss_history()[20:].mean(0)  # each member's mean loss over steps 20-60
    a, b = laws["member"], laws["shared"]
    assert not np.allclose(a, b)  # not the same paths
    assert sps.ks_2samp(a, b).pvalue > 1e-3
    assert sps.ttest_ind(a, b, equal_var=False).pvalue > 1e-3


def test_what_is_not_batched_says_why():
    gan = get_model_class("gan").Config
    assert unsupported("gan", make_config(gan, {})) == ""
    assert "wgan-gp" in unsupported("gan", make_config(gan, {"loss": "wgan-gp"}))
    assert "batch norm" in unsupported("gan", make_config(gan, {"batch_norm": True}))
    assert "flow has no batched trainer" in unsupported("flow", None)
    runs = [Run(s) for s in _specs("gan", (0, 1), 5, loss="wgan")]
    with pytest.raises(ValueError, match="wgan"):
        make_group(runs)
    mixed = [Run(s) for s in _specs("gan", (0,), 5)] + [Run(s) for s in _specs("gan", (1,), 5, lr=1e-3)]
    with pytest.raises(ValueError, match="share"):
        make_group(mixed)


def test_a_nan_member_is_diverged_and_the_others_are_not():
    torch.set_num_threads(1)
    specs = _specs("ddpm", (0, 1, 2), 6, hidden=16)
    runs = [Run(s) for s in specs]
    group = make_group(runs)
    with torch.no_grad():
        next(iter(group.net.values()))[1].fill_(float("nan"))  # member 1's first layer
    for _ in range(3):
        group.train_step()
    assert group.first_bad.tolist() == [-1, 0, -1]


def _rows(path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_the_batched_sweep_gives_the_pool_s_rows(tmp_path, capsys):
    """`sweep --batched`: gan members batched (their rows as the worker pool's, to rounding), gmm's members
    (no batched trainer) on the pool as before."""
    common = ["--models", "gan,gmm", "--data", "8gaussians", "--seeds", "0,4", "--steps", "8"]
    common += ["--n-train", "1000"]
    assert cli.main(["sweep", *common, "--out", str(tmp_path / "pool")]) == 0
    assert cli.main(["sweep", *common, "--batched", "--out", str(tmp_path / "b")]) == 0
    assert "batched" in capsys.readouterr().out
    pool, batched = _rows(tmp_path / "pool" / "results.csv"), _rows(tmp_path / "b" / "results.csv")
    assert [(r["model"], r["seed"]) for r in pool] == [(r["model"], r["seed"]) for r in batched]
    for p, b in zip(pool, batched):
        assert b["status"] == "done" and b["steps"] == p["steps"]
        assert ("batched with" in b["message"]) == (b["model"] != "gmm")
        for k in ("energy_distance", "blur_gap", "modes", "high_quality"):
            assert float(b[k]) == pytest.approx(float(p[k]), rel=1e-3, abs=1e-4), (b["model"], b["seed"], k)
    doc = json.loads((tmp_path / "b" / "results.json").read_text())
    assert doc["sweep"]["batched"] is True and doc["sweep"]["rng"] == "member"


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--rng", "shared"], "--rng chooses"),
        (["--batched", "--rng", "dice"], "member or shared"),
        (["--batched", "--backend", "ray"], "not with --backend ray"),
        (["--device", "cuda"], "no CUDA GPU"),
    ],
)
def test_bad_batched_options_exit_2_with_one_sentence(extra, words, tmp_path, capsys):
    if extra == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv = ["sweep", "--models", "gan", "--data", "moons", "--seeds", "0-1", "--steps", "5"]
    assert cli.main([*argv, *extra, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_a_gpu_a_member_with_its_own_draws_is_its_solo_run():
    specs = _specs("ddpm", (0, 1), 20)
    solo = [fit(s) for s in specs]
    batched = train_group(specs, device="cuda", rng="member")
    for a, b in zip(solo, batched):
        assert _max_gap(a, b) < 1e-4
