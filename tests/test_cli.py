"""python -m lab end to end: train / sample / score, and every bad input exits 2 with one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lab.base import REGISTRY
from lab.cli import Progress, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEANS = np.array([[0.0, 0.0], [3.0, 1.0], [-2.0, 2.0]])
STD = np.array([0.5, 0.3])


def mixture(n, seed):
    r = np.random.default_rng(seed)
    return MEANS[r.integers(0, 3, n)] + r.standard_normal((n, 2)) * STD


def mixture_log_prob(x):
    from scipy.special import logsumexp

    z = (x[:, None, :] - MEANS[None]) / STD
    comp = -0.5 * (z**2).sum(-1) - np.log(2 * np.pi) - np.log(STD).sum()
    return logsumexp(comp, axis=1) - np.log(3)


def write(path, arr, header=True):
    np.savetxt(path, arr, delimiter=",", header="x,y" if header else "", comments="")
    return str(path)


def run_cli(*args):
    """The real command in a subprocess: exit code, stdout, stderr."""
    p = subprocess.run(
        [sys.executable, "-m", "lab", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def gmm_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    f = write(d / "F.csv", mixture(3000, 1))
    out = d / "run"
    code, stdout, stderr = run_cli(
        "train", "--model", "gmm", "--data-file", f, "--seconds", "5", "--out", out
    )
    assert code == 0, stderr
    return d, out, stdout


def test_train_writes_the_contract_files(gmm_run):
    _, out, stdout = gmm_run
    assert {"metrics.json", "samples.csv", "config.json", "model.safetensors"} <= set(os.listdir(out))
    m = json.loads((out / "metrics.json").read_text())
    for k in (
        "model",
        "data",
        "seed",
        "steps",
        "train_seconds",
        "sample_seconds_per_1000",
        "energy_distance",
        "energy_distance_floor",
        "test_nll",
        "diverged",
    ):
        assert k in m
    assert m["model"] == "gmm" and m["diverged"] is False
    lines = (out / "samples.csv").read_text().splitlines()
    assert lines[0] == "x,y" and len(lines) == 2001
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["covariance_type"] == "full"
    assert "held-out NLL" in stdout


def test_score_matches_the_true_entropy(gmm_run):
    """The issue's 'done' check: test NLL within 0.02 nats of the true entropy on a Gaussian mixture."""
    d, out, _ = gmm_run
    test = mixture(20000, 2)
    t = write(d / "T.csv", test, header=False)
    code, _, stderr = run_cli("score", "--run", out, "--points", t, "--out", d / "S.csv")
    assert code == 0, stderr
    lines = (d / "S.csv").read_text().splitlines()
    assert lines[0] == "log_prob" and len(lines) == 20001
    nll = -np.loadtxt(d / "S.csv", skiprows=1).mean()
    entropy = -mixture_log_prob(test).mean()
    assert abs(nll - entropy) < 0.02


def test_score_takes_one_point_or_identical_points(gmm_run, tmp_path):
    """Training needs 10 points that spread; scoring is asked about any points, even one."""
    _, out, _ = gmm_run
    for name, text in (("one.csv", "0.5,0.5\n"), ("same.csv", "x,y\n" + "3,1\n" * 4)):
        (tmp_path / name).write_text(text)
        assert (
            main(
                [
                    "score",
                    "--run",
                    str(out),
                    "--points",
                    str(tmp_path / name),
                    "--out",
                    str(tmp_path / "s.csv"),
                ]
            )
            == 0
        )
        lp = np.loadtxt(tmp_path / "s.csv", skiprows=1, ndmin=1)
        assert np.isfinite(lp).all() and len(lp) == text.count("\n") - text.startswith("x")
    assert np.allclose(lp, lp[0])


def test_sample_is_seeded(gmm_run, tmp_path):
    _, out, _ = gmm_run
    for name in ("a", "b"):
        assert (
            main(
                [
                    "sample",
                    "--run",
                    str(out),
                    "-n",
                    "50",
                    "--seed",
                    "3",
                    "--out",
                    str(tmp_path / f"{name}.csv"),
                ]
            )
            == 0
        )
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_builtin_data_metrics(tmp_path):
    assert (
        main(
            [
                "train",
                "--model",
                "kde",
                "--data",
                "8gaussians",
                "--steps",
                "3",
                "--n-train",
                "1000",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["steps"] == 3 and m["data"]["name"] == "8gaussians"
    assert {"kl_to_truth", "modes", "high_quality", "blur_gap"} <= set(m)


def test_list_names_every_model_and_dataset(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for key in (
        "gmm",
        "kde",
        "flow",
        "ar",
        "vae",
        "gan",
        "ddpm",
        "score",
        "ae",
        "moons",
        "25gaussians",
        "checkerboard",
    ):
        assert key in out


BAD_FILES = {
    "nan.csv": ("x,y\n1,2\nnan,3\n", "Row 3"),
    "text.csv": ("1,2\n3,abc\n", "not a number"),
    "one_col.csv": ("1\n2\n3\n", "1 column"),
    "three_cols.csv": ("1,2,3\n4,5,6\n", "3 columns"),
    "empty.csv": ("", "no data rows"),
    "header_only.csv": ("x,y\n", "no data rows"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_data_file_exits_2_with_one_line(tmp_path, capsys, name):
    text, match = BAD_FILES[name]
    p = tmp_path / name
    p.write_text(text)
    assert (
        main(["train", "--model", "gmm", "--data-file", str(p), "--steps", "1", "--out", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and "Traceback" not in err


def test_the_byte_limit_refuses_a_60_megabyte_points_file(gmm_run, tmp_path, capsys):
    """A real, finished run and a real 60 MB file (sparse): the exit comes from the 50 MB limit and nothing else."""
    _, out, _ = gmm_run
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(60 * 2**20)
    assert main(["score", "--run", str(out), "--points", str(big), "--out", str(tmp_path / "s.csv")]) == 2
    assert capsys.readouterr().err == "error: The file is 60 MB; the limit is 50 MB.\n"
    assert not (tmp_path / "s.csv").exists()


def test_the_row_limit(tmp_path, capsys, monkeypatch):
    from lab import data

    p = tmp_path / "many.csv"
    p.write_text("\n".join(f"{i},{i % 7}" for i in range(50)))
    monkeypatch.setattr(data, "MAX_ROWS", 10)
    assert (
        main(["train", "--model", "gmm", "--data-file", str(p), "--steps", "1", "--out", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "more than 10 rows (row 11 is one too many)" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--model", "nope", "--data", "moons", "--out", "o"], "Unknown model 'nope'"),
        (["train", "--model", "gmm", "--data", "nope", "--out", "o"], "Unknown dataset 'nope'"),
        (
            ["train", "--model", "gmm", "--data", "moons", "--set", "n_components=abc", "--out", "o"],
            "whole number",
        ),
        (
            ["train", "--model", "gmm", "--data", "moons", "--set", "colour=red", "--out", "o"],
            "Unknown setting 'colour'",
        ),
        (
            ["train", "--model", "gmm", "--data", "moons", "--set", "covariance_type=round", "--out", "o"],
            "must be one of",
        ),
        (
            ["train", "--model", "gmm", "--data", "moons", "--set", "n_components=0", "--out", "o"],
            "below its minimum",
        ),
        (["train", "--model", "gmm", "--data", "moons", "--set", "oops", "--out", "o"], "field=value"),
        (
            ["train", "--model", "gmm", "--data", "moons", "--steps", "-3", "--out", "o"],
            "--steps must be a positive",
        ),
        (
            ["train", "--model", "gmm", "--data", "moons", "--seconds", "nan", "--out", "o"],
            "--seconds must be a positive",
        ),
        (
            ["train", "--model", "gmm", "--data", "moons", "--steps", "5", "--seconds", "3", "--out", "o"],
            "not allowed with",
        ),
        (["train", "--model", "gmm", "--data", "moons", "--data-set", "noise=-1", "--out", "o"], "outside"),
        (["train", "--model", "gmm", "--data-file", "/no/such.csv", "--out", "o"], "no file"),
        (["train", "--model", "gmm", "--data", "moons", "--device", "tpu", "--out", "o"], "--device must be"),
        (["train", "--model", "gmm", "--out", "o"], "one of the arguments --data --data-file is required"),
        (["sample", "--run", "/no/such/dir", "-n", "5", "--out", "o.csv"], "is not a directory"),
        (["sample", "--run", ".", "-n", "0", "--out", "o.csv"], "-n must be a positive"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err, err


# ---------------------------------------------------------------------------------------------
# Hostile input: every case answers with one sentence on stderr and exit code 2, before any training
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile(gmm_run, tmp_path_factory):
    """Paths the hostile cases point at: bad data files, and run directories broken in every way."""
    import shutil

    d = tmp_path_factory.mktemp("hostile")
    _, good, _ = gmm_run
    files = {
        "two.csv": "x,y\n1,2\n3,4\n",
        "same.csv": "1,2\n" * 200,
        "const.csv": "".join(f"{i},5\n" for i in range(200)),
        "gap.csv": "1,2\n3,\n5,6\n",
        "huge.csv": "1,2\n3,1e300\n",
    }
    for name, text in files.items():
        (d / name).write_text(text)
    (d / "junk.csv").write_bytes(os.urandom(4096).replace(b"\n", b"") + b"\x00")
    (d / "a_dir").mkdir()
    (d / "a_file").write_text("x")

    def run_copy(name, edit):
        r = d / name
        shutil.copytree(good, r)
        edit(r)
        return r

    cfg = json.loads((good / "config.json").read_text())
    run_copy("no_weights", lambda r: (r / "model.safetensors").unlink())
    run_copy("corrupt_weights", lambda r: (r / "model.safetensors").write_bytes(os.urandom(1000)))
    run_copy(
        "truncated_weights",
        lambda r: (r / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes()[:300]),
    )
    run_copy(
        "failed",
        lambda r: (r / "config.json").write_text(json.dumps({**cfg, "status": "failed", "message": "x"})),
    )
    run_copy("running", lambda r: (r / "config.json").write_text(json.dumps({**cfg, "status": "running"})))
    run_copy("no_config", lambda r: (r / "config.json").unlink())
    run_copy("junk_config", lambda r: (r / "config.json").write_text("{not json"))
    run_copy("list_config", lambda r: (r / "config.json").write_text("[1, 2]"))
    run_copy("other_family", lambda r: (r / "config.json").write_text(json.dumps({**cfg, "model": "flow"})))
    return d, good


TRAIN = ["train", "--model", "gmm", "--data", "moons", "--steps", "2"]
HOSTILE = [
    # seeds: rejected, not wrapped (numpy and scikit-learn take 0..2^32-1, the app 0..2^31-1)
    ("seed -1", TRAIN + ["--seed", "-1"], "--seed must be a whole number from 0 to 2147483647, got -1."),
    ("seed 2^40", TRAIN + ["--seed", "1099511627776"], "--seed must be a whole number from 0 to 2147483647"),
    ("seed 1e3", TRAIN + ["--seed", "1e3"], "invalid int value: '1e3'"),
    (
        "sample seed -1",
        ["sample", "--run", "{good}", "-n", "5", "--seed", "-1", "--out", "{d}/s.csv"],
        "--seed must be",
    ),
    # budgets and counts
    ("samples 0", TRAIN + ["--samples", "0"], "--samples must be a positive number"),
    ("samples -5", TRAIN + ["--samples", "-5"], "--samples must be a positive number"),
    ("samples 1e9", TRAIN + ["--samples", "1000000000"], "--samples must be a positive number up to 1e+07"),
    ("steps 0", TRAIN[:-2] + ["--steps", "0"], "--steps must be a positive number"),
    ("steps -1", TRAIN[:-2] + ["--steps", "-1"], "--steps must be a positive number"),
    ("seconds -1", TRAIN[:-2] + ["--seconds", "-1"], "--seconds must be a positive number"),
    ("seconds inf", TRAIN[:-2] + ["--seconds", "inf"], "--seconds must be a positive number"),
    ("seconds 1e9", TRAIN[:-2] + ["--seconds", "1e9"], "--seconds must be a positive number up to 86400"),
    ("n-train 0", TRAIN + ["--n-train", "0"], "--n-train must be a positive number"),
    ("n -1", ["sample", "--run", "{good}", "-n", "-1", "--out", "{d}/s.csv"], "-n must be a positive number"),
    # settings
    ("set nan", TRAIN + ["--set", "lr=nan"], "lr must be a finite number, got 'nan'."),
    ("set inf", TRAIN + ["--set", "lr=inf"], "lr must be a finite number, got 'inf'."),
    ("set -inf", TRAIN + ["--set", "tol=-inf"], "tol must be a finite number"),
    ("set empty", TRAIN + ["--set", "lr="], "lr must be a number, got ''."),
    ("set 1e400 int", TRAIN + ["--set", "n_components=1e400"], "n_components must be a whole number"),
    (
        "zero width",
        ["train", "--model", "flow", "--data", "moons", "--steps", "2", "--set", "hidden=0"],
        "hidden=0 is below its minimum 4.",
    ),
    (
        "zero width ddpm",
        ["train", "--model", "ddpm", "--data", "moons", "--steps", "2", "--set", "hidden=0"],
        "hidden=0 is below its minimum 16.",
    ),
    ("zero batch", TRAIN + ["--set", "batch_size=0"], "batch_size=0 is below its minimum 8."),
    ("unknown field", TRAIN + ["--set", "nope=1"], "Unknown setting 'nope'"),
    ("huge value", TRAIN + ["--set", "lr=" + "9" * 10_000 + "x"], "lr must be a number, got '99999"),
    ("huge field", TRAIN + ["--set", "x" * 10_000 + "=1"], "Unknown setting 'xxxxx"),
    ("data-set nan", TRAIN + ["--data-set", "noise=nan"], "outside"),
    (
        "data-set on a file",
        ["train", "--model", "gmm", "--data-file", "{d}/same.csv", "--data-set", "noise=1", "--out", "{d}/o"],
        "--data-set applies to built-in datasets",
    ),
    # devices
    ("device tpu", TRAIN + ["--device", "tpu"], "--device must be cpu or cuda, got 'tpu'."),
    # data files
    (
        "a directory",
        ["train", "--model", "gmm", "--data-file", "{d}/a_dir"],
        "a_dir is a directory, not a CSV file.",
    ),
    ("/dev/null", ["train", "--model", "gmm", "--data-file", "/dev/null"], "/dev/null is not a regular file"),
    ("/dev/zero", ["train", "--model", "gmm", "--data-file", "/dev/zero"], "/dev/zero is not a regular file"),
    ("missing file", ["train", "--model", "gmm", "--data-file", "{d}/nope.csv"], "There is no file at"),
    (
        "identical points",
        ["train", "--model", "kde", "--data-file", "{d}/same.csv"],
        "All 200 points are the same point (1, 2); a density needs points that differ.",
    ),
    (
        "constant column",
        ["train", "--model", "gmm", "--data-file", "{d}/const.csv"],
        "Every point has y = 5 (column 2 never changes)",
    ),
    (
        "empty cell",
        ["train", "--model", "flow", "--data-file", "{d}/gap.csv"],
        "Row 2 has an empty cell (a missing coordinate)",
    ),
    (
        "1e300",
        ["train", "--model", "gmm", "--data-file", "{d}/huge.csv"],
        "Row 2 has a coordinate beyond +-1e+15",
    ),
    ("binary junk", ["train", "--model", "gmm", "--data-file", "{d}/junk.csv"], "Row 1 is not text"),
    (
        "score /dev/zero",
        ["score", "--run", "{good}", "--points", "/dev/zero", "--out", "{d}/s.csv"],
        "/dev/zero is not a regular file",
    ),
    (
        "score a dir",
        ["score", "--run", "{good}", "--points", "{d}", "--out", "{d}/s.csv"],
        "is a directory, not a CSV file.",
    ),
    # outputs
    ("out is a file", TRAIN + ["--out", "{d}/a_file"], "--out {d}/a_file is a file, not a directory."),
    ("out /dev/null", TRAIN + ["--out", "/dev/null"], "--out /dev/null is a file, not a directory."),
    (
        "out under a file",
        TRAIN + ["--out", "/dev/null/run"],
        "--out /dev/null/run cannot be written (Not a directory).",
    ),
    ("out under /proc", TRAIN + ["--out", "/proc/lab-run"], "--out /proc/lab-run cannot be written"),
    (
        "sample out a dir",
        ["sample", "--run", "{good}", "-n", "5", "--out", "{d}"],
        "is a directory; give a file name",
    ),
    (
        "sample out under a file",
        ["sample", "--run", "{good}", "-n", "5", "--out", "/dev/null/s.csv"],
        "--out /dev/null/s.csv cannot be written (/dev/null is not a directory).",
    ),
    # run directories
    ("run missing", ["sample", "--run", "{d}/nope", "-n", "5", "--out", "{d}/s.csv"], "is not a directory."),
    (
        "run is a file",
        ["sample", "--run", "{d}/a_file", "-n", "5", "--out", "{d}/s.csv"],
        "is not a directory.",
    ),
    (
        "no weights",
        ["sample", "--run", "{d}/no_weights", "-n", "5", "--out", "{d}/s.csv"],
        "has no model.safetensors",
    ),
    (
        "corrupt weights",
        ["sample", "--run", "{d}/corrupt_weights", "-n", "5", "--out", "{d}/s.csv"],
        "is not a safetensors weights file",
    ),
    (
        "truncated weights",
        ["score", "--run", "{d}/truncated_weights", "--points", "{d}/const.csv", "--out", "{d}/s.csv"],
        "is not a safetensors weights file",
    ),
    (
        "failed run",
        ["sample", "--run", "{d}/failed", "-n", "5", "--out", "{d}/s.csv"],
        "is a failed run (x); train it again.",
    ),
    (
        "running run",
        ["score", "--run", "{d}/running", "--points", "{d}/const.csv", "--out", "{d}/s.csv"],
        "is still training",
    ),
    (
        "no config",
        ["sample", "--run", "{d}/no_config", "-n", "5", "--out", "{d}/s.csv"],
        "has no config.json",
    ),
    (
        "junk config",
        ["sample", "--run", "{d}/junk_config", "-n", "5", "--out", "{d}/s.csv"],
        "not readable JSON",
    ),
    (
        "list config",
        ["sample", "--run", "{d}/list_config", "-n", "5", "--out", "{d}/s.csv"],
        "not a run's description",
    ),
    (
        "other family",
        ["sample", "--run", "{d}/other_family", "-n", "5", "--out", "{d}/s.csv"],
        "The weights file holds a gmm model, not a flow model.",
    ),
]


@pytest.mark.parametrize("argv, match", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_input_exits_2_with_one_sentence(hostile, argv, match, capsys, monkeypatch):
    d, good = hostile
    fill = lambda a: a.replace("{d}", str(d)).replace("{good}", str(good))
    argv = [fill(a) for a in argv]
    if argv[0] == "train" and "--out" not in argv:
        argv += ["--out", str(d / "never")]
    before = sorted(os.listdir(d))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and err.rstrip().endswith((".", ")")), err
    assert fill(match) in err, err
    assert "Traceback" not in err and "internal error" not in err
    assert sorted(os.listdir(d)) == before  # refused before anything was written


def test_device_cuda_without_a_gpu(capsys, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(TRAIN + ["--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    assert (
        capsys.readouterr().err == "error: --device cuda was asked for, but no CUDA GPU is available here.\n"
    )


@pytest.mark.parametrize("key", list(REGISTRY))
def test_a_two_row_file_is_refused_for_every_family(key, tmp_path, capsys):
    p = write(tmp_path / "two.csv", np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert (
        main(["train", "--model", key, "--data-file", p, "--steps", "2", "--out", str(tmp_path / "o")]) == 2
    )
    err = capsys.readouterr().err
    assert (
        err == "error: The file has only 2 data rows; at least 10 are needed to train and measure a model.\n"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key", list(REGISTRY))
def test_ten_rows_train_every_family(key, tmp_path, capsys):
    """The smallest file the lab accepts trains and measures every family (exit 0, a finished run)."""
    p = write(tmp_path / "ten.csv", mixture(10, 4))
    assert (
        main(
            [
                "train",
                "--model",
                key,
                "--data-file",
                p,
                "--steps",
                "2",
                "--samples",
                "20",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "o" / "config.json").read_text())["status"] == "done"
    assert "floor" in capsys.readouterr().out


def test_a_run_that_fails_after_training_is_marked_and_refused(tmp_path, capsys, monkeypatch):
    """A crash after the weights exist (here: the evaluation) leaves a run marked failed; sample and score refuse it."""
    from lab import metrics

    def broken(self, model, **kw):
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(metrics.Evaluator, "__call__", broken)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--model",
                "flow",
                "--data",
                "moons",
                "--steps",
                "2",
                "--n-train",
                "300",
                "--out",
                str(run),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (RuntimeError: evaluation broke)" in err
    for name in ("config.json", "metrics.json"):
        info = json.loads((run / name).read_text())
        assert (
            info["status"] == "failed"
            and info["message"] == "training failed (RuntimeError: evaluation broke)"
        )
    monkeypatch.undo()
    pts = write(tmp_path / "p.csv", mixture(20, 0))
    for argv in (
        ["sample", "--run", str(run), "-n", "5", "--out", str(tmp_path / "s.csv")],
        ["score", "--run", str(run), "--points", pts, "--out", str(tmp_path / "s.csv")],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert (
            err
            == f"error: --run {run} is a failed run (training failed (RuntimeError: evaluation broke)); train it again.\n"
        )
    assert not (tmp_path / "s.csv").exists()


def test_an_interrupted_run_is_marked_failed(tmp_path, capsys, monkeypatch):
    from lab import run as run_mod

    def interrupted(spec, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "fit", interrupted)
    out = tmp_path / "run"
    assert main(["train", "--model", "gmm", "--data", "moons", "--steps", "2", "--out", str(out)]) == 130
    assert json.loads((out / "config.json").read_text())["status"] == "failed"
    assert "interrupted" in json.loads((out / "metrics.json").read_text())["message"]


def test_score_with_corrupt_weights(gmm_run, tmp_path, capsys):
    import shutil

    _, good, _ = gmm_run
    run = tmp_path / "run"
    shutil.copytree(good, run)
    (run / "model.safetensors").write_bytes(b"not a weights file at all")
    pts = write(tmp_path / "p.csv", mixture(10, 0))
    assert main(["score", "--run", str(run), "--points", pts, "--out", str(tmp_path / "s.csv")]) == 2
    assert "not a safetensors weights file" in capsys.readouterr().err


def test_score_a_model_without_density_exits_2(tmp_path, capsys):
    run = tmp_path / "gan"
    assert (
        main(
            [
                "train",
                "--model",
                "gan",
                "--data",
                "8gaussians",
                "--steps",
                "3",
                "--n-train",
                "500",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    pts = write(tmp_path / "p.csv", mixture(10, 0))
    capsys.readouterr()
    assert main(["score", "--run", str(run), "--points", pts, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1 and "The gan model has no density" in err and "gan," not in err and "flow" in err
    )


def test_one_line_in_a_real_subprocess(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("1,2\n3,oops\n")
    code, _, err = run_cli("train", "--model", "gmm", "--data-file", p, "--out", tmp_path / "o")
    assert code == 2 and err.strip() == "error: Row 2 has 'oops', which is not a number."


@pytest.mark.parametrize("case", ["seed -1", "/dev/zero", "corrupt weights", "other family"])
def test_hostile_cases_in_a_real_process(hostile, case):
    """The same answers from `python -m lab` itself: exit 2 and stderr exactly one line (no warning, no traceback)."""
    d, good = hostile
    argv, match = next(c[1:] for c in HOSTILE if c[0] == case)
    argv = [a.replace("{d}", str(d)).replace("{good}", str(good)) for a in argv]
    if argv[0] == "train":
        argv += ["--out", str(d / "never")]
    code, out, err = run_cli(*argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and match in err, err


def test_progress_bar_draws_only_on_a_terminal_after_a_second():
    import io

    class Tty(io.StringIO):
        def isatty(self):
            return True

    class FakeRun:
        progress, step, train_seconds = 0.5, 10, 1.2

        class losses:
            @staticmethod
            def last():
                return {"nll": 1.0}

    s = Tty()
    bar = Progress(s, after=0.0)
    bar(FakeRun)
    bar.close()
    assert "50.0%" in s.getvalue() and s.getvalue().endswith("\n")
    quiet = io.StringIO()
    Progress(quiet, after=0.0)(FakeRun)
    assert quiet.getvalue() == ""
    slow = Tty()
    Progress(slow, after=60.0)(FakeRun)
    assert slow.getvalue() == ""
