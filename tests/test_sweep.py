"""Sweeps (lab/sweep.py): the spec's parsing and its one-sentence refusals, the summary's statistics, and the
local backend (trainer workers) against the Ray backend (a local Ray) on the same members."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import pytest

from lab import cli
from lab.sweep import (
    SweepError,
    make_sweep,
    parse_grid,
    parse_seeds,
    row_of,
    run_local,
    stats,
    summarise,
)


def test_seeds_take_ranges_lists_and_both():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds(" 0-2, 10 ") == [0, 1, 2, 10]
    assert parse_seeds("5") == [5]


@pytest.mark.parametrize(
    "text, words",
    [
        ("5-3", "empty"),
        ("", "empty"),
        ("a-b", "not a seed"),
        ("-1", "not a seed"),
        ("0-2,2", "more than once"),
        ("0-99999", "at most"),
        ("2147483648", "outside"),
        ("1.5", "not a seed"),
    ],
)
def test_bad_seeds_say_what_is_wrong(text, words):
    with pytest.raises(SweepError, match=words):
        parse_seeds(text)


def test_the_grid_is_the_product_over_fields_for_the_models_that_have_them():
    assert parse_grid(["lr=1e-3,3e-3", "loss=gan"]) == {"lr": ["1e-3", "3e-3"], "loss": ["gan"]}
    s = make_sweep("gan,ddpm", "0-2", ["lr=1e-3,3e-3", "loss=minimax,wgan-gp"], data="moons", steps=5)
    gan = [m for m in s.members if m.key == "gan"]
    ddpm = [m for m in s.members if m.key == "ddpm"]
    assert len(gan) == 3 * 2 * 2 and len(ddpm) == 3 * 2  # ddpm has lr but no `loss`
    assert {dict(m.settings)["loss"] for m in gan} == {"minimax", "wgan-gp"}
    assert all("loss" not in dict(m.settings) for m in ddpm)
    assert s.spec(gan[-1]).config.loss == "wgan-gp" and s.spec(gan[-1]).max_steps == 5


BAD = [
    (["--models", "gan,nope"], "Unknown model 'nope'"),
    (["--models", "gan,gan"], "twice"),
    (["--models", ""], "--models"),
    (["--seeds", "9-2"], "empty"),
    (["--set", "nofield=1,2"], "no model in this sweep"),
    (["--set", "lr=nan"], "lr=nan for gan"),
    (["--set", "lr=1e-3,1e-3"], "twice"),
    (["--set", "lr=1e-3", "--set", "lr=2e-3"], "given twice"),
    (["--set", "lr"], "field=v1,v2"),
    (["--seeds", "0-25000"], "at most"),
    (["--set", "loss=nope"], "loss=nope for gan"),
    (["--backend", "spark"], "local or ray"),
]


@pytest.mark.parametrize("change, words", BAD)
def test_bad_sweep_specs_exit_2_with_one_sentence(change, words, tmp_path, capsys):
    args = {
        "--models": "gan",
        "--data": "moons",
        "--seeds": "0-3",
        "--steps": "5",
        "--out": str(tmp_path / "o"),
    }
    extra = []
    for i in range(0, len(change), 2):
        if change[i] == "--set":
            extra += change[i : i + 2]
        else:
            args[change[i]] = change[i + 1]
    argv = ["sweep", *[x for kv in args.items() for x in kv], *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr()
    assert err.out == "" and len(err.err.strip().splitlines()) == 1 and words in err.err
    assert not (tmp_path / "o").exists()  # nothing written before the spec is sound


def test_a_bad_spec_through_a_real_process_is_one_line():
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "lab",
            "sweep",
            "--models",
            "gan",
            "--data",
            "moons",
            "--seeds",
            "3-1",
            "--seconds",
            "1",
            "--out",
            "/nonexistent/x",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert p.returncode == 2 and p.stdout == "" and p.stderr.count("\n") == 1 and "empty" in p.stderr


def test_stats_are_mean_standard_error_min_max_n_of_the_finite_values():
    s = stats([1.0, 2.0, 3.0, 4.0, None, math.nan, math.inf])
    assert s["n"] == 4 and s["mean"] == 2.5 and s["min"] == 1.0 and s["max"] == 4.0
    assert s["se"] == pytest.approx(math.sqrt(((1.5**2 + 0.5**2) * 2) / 3) / 2)  # sample std / sqrt(n)
    assert stats([7.0]) == {"mean": 7.0, "se": None, "min": 7.0, "max": 7.0, "n": 1}
    assert stats([])["n"] == 0 and stats([])["mean"] is None


def test_the_summary_is_per_setting_and_counts_divergence_and_failure():
    s = make_sweep("gan", "0-3", ["lr=1e-3,3e-3"], data="8gaussians", steps=5)
    rows = []
    for i, m in enumerate(s.members):
        if m.seed == 3 and dict(m.settings)["lr"] == "3e-3":
            rows.append(
                row_of(s, m, None, "JobError: the trainer process stopped")
            )  # a failed member is a row
        elif m.seed == 2:
            rows.append(
                row_of(
                    s,
                    m,
                    {
                        "steps": 5,
                        "train_seconds": 0.1,
                        "status": "diverged",
                        "message": "nan",
                        "diverged": True,
                    },
                )
            )
        else:
            rows.append(
                row_of(
                    s,
                    m,
                    {
                        "steps": 5,
                        "train_seconds": 0.1,
                        "status": "done",
                        "message": "",
                        "diverged": False,
                        "metrics": {"energy_distance": float(i), "modes": 8},
                    },
                )
            )
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(rows) == 8 and len(failed) == 1 and failed[0]["error"].startswith("JobError")
    summary = {(r["lr"], r["metric"]): r for r in summarise(s, rows)}
    low = [r["energy_distance"] for r in rows if r["lr"] == "1e-3" and r["energy_distance"] is not None]
    assert summary["1e-3", "energy_distance"]["mean"] == pytest.approx(sum(low) / len(low))
    assert summary["1e-3", "energy_distance"]["n"] == 3
    assert summary["1e-3", "diverged"]["mean"] == 0.25 and summary["3e-3", "diverged"][
        "mean"
    ] == pytest.approx(1 / 3)
    assert summary["3e-3", "failed"]["mean"] == 0.25 and summary["3e-3", "failed"]["n"] == 4


def _same(row: dict) -> dict:
    """What must agree between backends: all but the wall-clock measurements."""
    return {k: v for k, v in row.items() if k not in ("train_seconds", "message", "sample_seconds_per_1000")}


def test_local_and_ray_backends_give_identical_rows(tmp_path):
    import ray

    from lab.sweep import run_ray

    s = make_sweep("gan,ddpm", "0-1", [], data="8gaussians", steps=30, n_train=2000, n_eval=500)
    local = run_local(s, workers=2)
    assert not ray.is_initialized()
    remote = run_ray(s)
    assert not ray.is_initialized()  # the local Ray started for the sweep is shut down
    assert [r["status"] for r in local] == ["done"] * 4
    assert [_same(r) for r in local] == [_same(r) for r in remote]
    assert local[0]["energy_distance"] != local[1]["energy_distance"]  # the seeds differ


def test_the_command_writes_rows_and_summary(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        "--models",
        "ddpm",
        "--data",
        "moons",
        "--seeds",
        "0,5",
        "--set",
        "T=20,50",
        "--steps",
        "10",
        "--n-train",
        "500",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    assert "4 members" in capsys.readouterr().out
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["seed"], r["T"]) for r in rows] == [("0", "20"), ("5", "20"), ("0", "50"), ("5", "50")]
    assert all(r["status"] == "done" and r["steps"] == "10" and float(r["energy_distance"]) > 0 for r in rows)
    doc = json.loads((out / "results.json").read_text())
    assert doc["sweep"]["grid"] == {"T": ["20", "50"]} and len(doc["rows"]) == 4
    with open(out / "summary.csv") as f:
        summary = [r for r in csv.DictReader(f) if r["metric"] == "energy_distance"]
    assert [(r["T"], r["n"]) for r in summary] == [("20", "2"), ("50", "2")]


def test_members_spread_over_the_workers():

    s = make_sweep("ddpm", "0-3", [], data="moons", steps=5, n_train=500, n_eval=200)
    seen: list[int] = []
    from lab.live.pool import WorkerPool

    real = WorkerPool.measure

    def spy(self, *a, **k):
        seen.append(self._least_loaded().index)
        return real(self, *a, **k)

    WorkerPool.measure = spy
    try:
        rows = run_local(s, workers=2)
    finally:
        WorkerPool.measure = real
    assert [r["status"] for r in rows] == ["done"] * 4
    assert sorted(seen[:2]) == [0, 1]  # the first two members go to different workers


def _wait(job, seconds: float = 120.0) -> None:
    import time

    t0 = time.monotonic()
    while not job.done and time.monotonic() - t0 < seconds:
        time.sleep(0.1)


def test_a_sweep_job_runs_in_the_background_reports_progress_and_cancels():
    from lab.sweep import SweepJob, local_pool

    pool = local_pool(1)
    try:
        fast = make_sweep("kde", "0-2", [], data="moons", steps=2, n_train=300, n_eval=200)
        seen: list[int] = []
        job = SweepJob(fast, pool=pool).start()
        while not job.done:
            seen.append(job.done_count)
            _wait(job, 0.05)
        assert not job.error and job.done_count == job.total == 3 and job.fraction == 1.0
        assert [(m.seed, r["seed"], r["status"]) for m, r in job.pairs()] == [
            (s, s, "done") for s in range(3)
        ]
        assert seen == sorted(seen)  # progress only grows
        ed = [r for r in job.summary() if r["metric"] == "energy_distance"]
        assert len(ed) == 1 and ed[0]["n"] == 3

        # two sweeps in one queue, ordered by the caller: the second dataset's members first
        two = [
            make_sweep("kde", "0-1", [], data=d, steps=2, n_train=300, n_eval=200)
            for d in ("moons", "circles")
        ]
        job = SweepJob(two, pool=pool, order=lambda sw, m: (sw.data_name != "circles", m.seed)).start()
        _wait(job)
        assert [(sw.data_name, i) for sw, i in job.items] == [
            ("circles", 0),
            ("circles", 1),
            ("moons", 0),
            ("moons", 1),
        ]
        assert [r["data"] for r in job.rows()] == ["moons", "moons", "circles", "circles"]  # sweep order
        assert {r["data"] for r in job.summary()} == {"moons", "circles"}

        slow = make_sweep("gan", "0-5", [], data="moons", seconds=60, n_train=300, n_eval=200)
        job = SweepJob(slow, pool=pool).start()
        import time

        t0 = time.monotonic()
        while not job.in_flight() and time.monotonic() - t0 < 60:
            time.sleep(0.05)
        assert job.in_flight() and job.in_flight()[0] == ("moons", slow.members[0])
        job.cancel(wait=10)
        assert job.done and job.cancelled and job.done_count == 0 and job.rows() == []
        # the cancelled members left the trainer: a new sweep on the same pool finishes at once
        again = SweepJob(fast, pool=pool).start()
        _wait(again, 60)
        assert again.done_count == 3
    finally:
        pool.close()
