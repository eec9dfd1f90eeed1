"""python -m lab end to end: train / sample / score, and every bad input exits 2 with one line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

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
    p = subprocess.run([sys.executable, "-m", "lab", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def gmm_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    f = write(d / "F.csv", mixture(3000, 1))
    out = d / "run"
    code, stdout, stderr = run_cli("train", "--model", "gmm", "--data-file", f, "--seconds", "5", "--out", out)
    assert code == 0, stderr
    return d, out, stdout


def test_train_writes_the_contract_files(gmm_run):
    _, out, stdout = gmm_run
    assert {"metrics.json", "samples.csv", "config.json", "model.safetensors"} <= set(os.listdir(out))
    m = json.loads((out / "metrics.json").read_text())
    for k in ("model", "data", "seed", "steps", "train_seconds", "sample_seconds_per_1000", "energy_distance",
              "energy_distance_floor", "test_nll", "diverged"):
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


def test_sample_is_seeded(gmm_run, tmp_path):
    _, out, _ = gmm_run
    for name in ("a", "b"):
        assert main(["sample", "--run", str(out), "-n", "50", "--seed", "3", "--out", str(tmp_path / f"{name}.csv")]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_builtin_data_metrics(tmp_path):
    assert main(["train", "--model", "kde", "--data", "8gaussians", "--steps", "3", "--n-train", "1000", "--out", str(tmp_path)]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["steps"] == 3 and m["data"]["name"] == "8gaussians"
    assert {"kl_to_truth", "modes", "high_quality", "blur_gap"} <= set(m)


def test_list_names_every_model_and_dataset(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for key in ("gmm", "kde", "flow", "ar", "vae", "gan", "ddpm", "score", "ae", "moons", "25gaussians", "checkerboard"):
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
    assert main(["train", "--model", "gmm", "--data-file", str(p), "--steps", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err and "Traceback" not in err


def test_huge_file_and_many_rows(tmp_path, capsys, monkeypatch):
    import lab.data as data

    p = tmp_path / "big.csv"
    p.write_text("\n".join(f"{i},{i}" for i in range(50)))
    monkeypatch.setattr(data, "MAX_BYTES", 64)
    assert main(["score", "--run", str(tmp_path), "--points", str(p), "--out", str(tmp_path / "s.csv")]) == 2
    monkeypatch.setattr(data, "MAX_BYTES", 50 * 2**20)
    monkeypatch.setattr(data, "MAX_ROWS", 10)
    assert main(["train", "--model", "gmm", "--data-file", str(p), "--steps", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "more than 10 rows" in err[1]


@pytest.mark.parametrize(
    "argv, match",
    [
        (["train", "--model", "nope", "--data", "moons", "--out", "o"], "Unknown model 'nope'"),
        (["train", "--model", "gmm", "--data", "nope", "--out", "o"], "Unknown dataset 'nope'"),
        (["train", "--model", "gmm", "--data", "moons", "--set", "n_components=abc", "--out", "o"], "whole number"),
        (["train", "--model", "gmm", "--data", "moons", "--set", "colour=red", "--out", "o"], "Unknown setting 'colour'"),
        (["train", "--model", "gmm", "--data", "moons", "--set", "covariance_type=round", "--out", "o"], "must be one of"),
        (["train", "--model", "gmm", "--data", "moons", "--set", "n_components=0", "--out", "o"], "below its minimum"),
        (["train", "--model", "gmm", "--data", "moons", "--set", "oops", "--out", "o"], "field=value"),
        (["train", "--model", "gmm", "--data", "moons", "--steps", "-3", "--out", "o"], "--steps must be a positive"),
        (["train", "--model", "gmm", "--data", "moons", "--seconds", "nan", "--out", "o"], "--seconds must be a positive"),
        (["train", "--model", "gmm", "--data", "moons", "--steps", "5", "--seconds", "3", "--out", "o"], "not allowed with"),
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


def test_score_without_density_and_corrupt_weights(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"not a weights file at all")
    pts = write(tmp_path / "p.csv", mixture(10, 0))
    assert main(["score", "--run", str(run), "--points", pts, "--out", str(tmp_path / "s.csv")]) == 2
    assert "not a safetensors weights file" in capsys.readouterr().err


def test_score_a_model_without_density_exits_2(tmp_path, capsys):
    run = tmp_path / "gan"
    assert main(["train", "--model", "gan", "--data", "8gaussians", "--steps", "3", "--n-train", "500", "--out", str(run)]) == 0
    pts = write(tmp_path / "p.csv", mixture(10, 0))
    capsys.readouterr()
    assert main(["score", "--run", str(run), "--points", pts, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "The gan model has no density" in err and "gan," not in err and "flow" in err


def test_one_line_in_a_real_subprocess(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("1,2\n3,oops\n")
    code, out, err = run_cli("train", "--model", "gmm", "--data-file", p, "--out", tmp_path / "o")
    assert code == 2 and err.strip() == "error: Row 2 has 'oops', which is not a number."


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
