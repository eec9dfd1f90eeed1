"""Training with missing data: CSV empty cells, exact EM for the GMM (Ghahramani & Jordan 1994),
the autoregressive model's p(x_first) from rows missing the second variable, and the families that refuse."""

import json
import os

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from lab.base import make_model
from lab.classical import em_step_missing
from lab.cli import main
from lab.data import DataError, MissingData, knock_out, make_dataset, parse_points_csv
from lab.run import Run, RunSpec

ROWS = "".join(f"{i},{i % 7}\n" for i in range(12))


# ---------------------------------------------------------------------------------------------
# CSV: an empty cell is a missing coordinate; the text nan is not
# ---------------------------------------------------------------------------------------------


def test_empty_cells_are_missing_coordinates():
    ds = parse_points_csv("x,y\n" + ROWS + "3,\n,4\n\n,\n5, \n")
    assert ds.points.shape == (12, 2)
    assert np.array_equal(ds.incomplete, [[3, np.nan], [np.nan, 4], [5, np.nan]], equal_nan=True)
    assert ds.first_incomplete_row == 14  # the header is row 1
    assert ds.params()["incomplete"] == 3
    assert len(parse_points_csv(ROWS + "3,\n", missing="drop").incomplete) == 0
    assert len(ds.without_incomplete().incomplete) == 0 and len(ds.without_incomplete().points) == 12


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        (
            ROWS + "nan,3\n",
            {},
            "Row 13 has a missing or infinite value (NaN or inf).",
        ),
        (ROWS + "3,NaN\n", {"missing": "drop"}, "Row 13 has a missing or infinite value"),
        (ROWS + ",inf\n", {}, "Row 13 has a missing or infinite value"),
        (ROWS + ",abc\n", {}, "Row 13 has 'abc', which is not a number."),
        (ROWS + "1e300,\n", {}, "Row 13 has a coordinate beyond"),
        (ROWS + "3,\n", {"missing": "error", "cannot": "why not"}, "Row 13 has an empty cell (a missing "),
        ("1,\n", {"training": False}, "Row 1 has an empty cell (a missing coordinate); scoring needs both"),
        ("1,2\n" * 3 + "4,\n" * 30, {}, "only 3 complete rows (and 30 with a missing coordinate)"),
        ("1,\n" * 30, {"missing": "drop"}, "only 0 complete rows (and 30 with a missing coordinate)"),
    ],
)
def test_bad_missing_values_give_one_sentence(text, kwargs, match):
    with pytest.raises(DataError) as e:
        parse_points_csv(text, **kwargs)
    assert match in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_knock_out_hides_the_asked_share_and_column():
    x = np.arange(200.0).reshape(100, 2)
    for which, cols in (("x1", {0}), ("x2", {1}), ("either", {0, 1})):
        y = knock_out(x, 0.4, which, seed=3)
        gone = np.isnan(y)
        assert gone.any(1).sum() == 40 and gone.sum() == 40  # 40 rows lose exactly one coordinate
        assert set(np.flatnonzero(gone.any(0))) == cols
        assert np.array_equal(y[~gone], x[~gone])


# ---------------------------------------------------------------------------------------------
# EM with missing coordinates
# ---------------------------------------------------------------------------------------------


def _observed_log_lik(x, weights, means, covs):
    """Mean log p(x_o) by scipy, row by row: the slow, obviously correct reference."""
    out = []
    for row in x:
        o = ~np.isnan(row)
        comp = [
            np.log(w) + multivariate_normal(m[o], c[np.ix_(o, o)]).logpdf(row[o])
            for w, m, c in zip(weights, means, covs)
        ]
        out.append(logsumexp(comp))
    return float(np.mean(out))


def _unpack(theta, K):
    logits, means, raw = theta[:K], theta[K : 3 * K].reshape(K, 2), theta[3 * K :].reshape(K, 3)
    L = np.zeros((K, 2, 2))
    L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = np.exp(raw[:, 0]), raw[:, 1], np.exp(raw[:, 2])
    return np.exp(logits - logsumexp(logits)), means, L @ L.transpose(0, 2, 1)


def _pack(weights, means, covs):
    L = np.linalg.cholesky(covs)
    raw = np.stack([np.log(L[:, 0, 0]), L[:, 1, 0], np.log(L[:, 1, 1])], 1)
    return np.concatenate([np.log(weights), means.ravel(), raw.ravel()])


def _em(x, weights, means, covs, iters):
    lls = []
    for _ in range(iters):
        ll, weights, means, covs = em_step_missing(x, weights, means, covs, reg=0.0)
        lls.append(ll)
    return lls, weights, means, covs


def _incomplete_sample(n, seed, share=0.5):
    r = np.random.default_rng(seed)
    x = r.multivariate_normal([1.0, -0.5], [[1.0, 0.7], [0.7, 0.8]], n)
    return knock_out(x, share, "either", seed)


def test_em_step_without_missing_values_is_scikit_learns():
    from sklearn.mixture import GaussianMixture

    x = make_dataset("moons").sample(400, 0)
    gm = GaussianMixture(3, max_iter=2, random_state=0, tol=0).fit(x)
    ll, w, mu, cov = em_step_missing(x, gm.weights_, gm.means_, gm.covariances_)
    bound, log_resp = gm._e_step(x)
    gm._m_step(x, log_resp)
    assert abs(ll - bound) < 1e-12
    for a, b in ((w, gm.weights_), (mu, gm.means_), (cov, gm.covariances_)):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_em_with_missing_values_is_the_direct_maximum_of_the_observed_likelihood():
    """One Gaussian, half the rows missing x1 or x2: EM's fixed point is the maximiser of
    sum_i log N(x_i,o; mu_o, Sigma_oo), found here directly by BFGS."""
    x = _incomplete_sample(60, 0)
    full = x[~np.isnan(x).any(1)]
    lls, w, mu, cov = _em(x, np.ones(1), full.mean(0, keepdims=True), np.cov(full.T)[None], 3000)
    res = minimize(
        lambda t: -_observed_log_lik(x, *_unpack(t, 1)), _pack(np.ones(1), mu * 0, np.eye(2)[None])
    )
    _, mu_d, cov_d = _unpack(res.x, 1)
    assert abs(lls[-1] - _observed_log_lik(x, w, mu, cov)) < 1e-9  # em_step's likelihood is scipy's
    assert abs(lls[-1] + res.fun) < 1e-7, (lls[-1], -res.fun)
    np.testing.assert_allclose(mu, mu_d, atol=2e-4)
    np.testing.assert_allclose(cov, cov_d, atol=2e-4)
    # and it is not the complete-rows answer: the incomplete rows moved it
    assert np.abs(mu[0] - full.mean(0)).max() > 0.02


def test_em_with_missing_values_climbs_to_a_stationary_point():
    """Two components: the observed-data likelihood never falls (EM's guarantee, which an inexact M step
    breaks), and BFGS started at EM's answer finds nothing higher."""
    x = knock_out(make_dataset("8gaussians", std=0.3).sample(80, 1), 0.6, "either", 2)
    r = np.random.default_rng(0)
    full = x[~np.isnan(x).any(1)]
    lls, w, mu, cov = _em(x, np.ones(2) / 2, full[r.choice(len(full), 2)], np.stack([np.eye(2)] * 2), 1500)
    assert min(np.diff(lls)) > -1e-12
    res = minimize(lambda t: -_observed_log_lik(x, *_unpack(t, 2)), _pack(w, mu, cov), method="BFGS")
    assert -res.fun - lls[-1] < 1e-6, -res.fun - lls[-1]


def test_gmm_family_trains_on_incomplete_rows_to_the_maximum_likelihood():
    x = _incomplete_sample(200, 5)
    model = make_model("gmm", x, {"n_components": 1, "bic": False, "n_init": 1, "tol": 0.0})
    for _ in range(400):
        model.train_step(None)
    v = model.views()
    _, w, mu, cov = _em(x, np.ones(1), np.nanmean(x, 0)[None], np.eye(2)[None], 2000)
    np.testing.assert_allclose(v["means"], mu, atol=1e-3)
    np.testing.assert_allclose(v["covariances"], cov, atol=2e-3)


# ---------------------------------------------------------------------------------------------
# The autoregressive model: rows missing x2 train p(x1); rows missing x1 contribute nothing
# ---------------------------------------------------------------------------------------------


def _ar(x, **cfg):
    model = make_model("ar", x, {"hidden": 32, "components": 4, "ema": 0.0, "noise": 0.0, **cfg}, seed=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        model.train_step(model.train_z[torch.randint(0, len(model.train_z), (256,), generator=g)])
    return model


def test_ar_first_marginal_learns_from_rows_missing_the_second():
    """Complete rows have x1 near -1; the rows that miss x2 have x1 near +1. Only the model that uses
    them puts mass of p(x1) near +1 (a third of the rows are there)."""
    r = np.random.default_rng(0)
    full = np.stack([r.normal(-1, 0.2, 300), r.normal(0, 1, 300)], 1)
    partial = np.stack([r.normal(1, 0.2, 150), np.full(150, np.nan)], 1)
    used = _ar(np.concatenate([full, partial]))
    dropped = _ar(full)
    assert used.views(bounds=(-2, 2, -3, 3))["rows_first_only"] == 150

    def mass_right(m):  # P(x1 > 0) under the learned marginal, on its own grid
        v = m.views(bounds=(-2, 2, -3, 3), grid=400)
        p = np.exp(v["marginal_log_prob"]) * (v["marginal_x"][1] - v["marginal_x"][0])
        return p[v["marginal_x"] > 0].sum()

    assert abs(mass_right(used) - 1 / 3) < 0.05, mass_right(used)
    assert mass_right(dropped) < 0.02


@pytest.mark.parametrize("conditioner", ["made", "gru"])
def test_ar_rows_missing_the_first_contribute_nothing(conditioner):
    x = np.concatenate(
        [make_dataset("moons").sample(100, 0), np.stack([np.full(50, np.nan), np.ones(50)], 1)]
    )
    model = make_model("ar", x, {"ema": 0.0, "weight_decay": 0.0, "conditioner": conditioner}, seed=0)
    assert model.rows_ignored == 50 and model.rows_first_only == 0
    before = [p.detach().clone() for p in model.parameters()]
    losses = model.train_step(model.train_z[100:])  # only rows missing x1
    assert losses["nll"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    losses = model.train_step(model.train_z)  # with the complete rows the same step learns
    assert np.isfinite(losses["nll"]) and losses["nll"] != 0.0


# ---------------------------------------------------------------------------------------------
# Runs and the command line: who can, who refuses, who drops
# ---------------------------------------------------------------------------------------------


def test_run_refuses_incomplete_rows_for_families_that_cannot():
    ds = MissingData(source=make_dataset("moons"), share=0.5)
    with pytest.raises(DataError) as e:
        Run(RunSpec("flow", ds, n_train=200))
    assert str(e.value).startswith("90 training rows miss a coordinate, and flow cannot learn from")
    run = Run(RunSpec("gmm", ds, n_train=200))
    assert len(run.train_x) == 90 and len(run.incomplete_x) == 90 and len(run.model.train_z) == 180
    dropped = Run(
        RunSpec("flow", MissingData(source=make_dataset("moons"), share=0.5, drop=True), n_train=200)
    )
    assert np.array_equal(dropped.train_x, run.train_x) and len(dropped.incomplete_x) == 0


@pytest.fixture(scope="module")
def incomplete_csv(tmp_path_factory):
    x = knock_out(make_dataset("moons").sample(300, 0), 0.5, "either", 1)
    path = tmp_path_factory.mktemp("missing") / "inc.csv"
    cell = lambda v: "" if np.isnan(v) else f"{v:.6f}"  # noqa: E731
    path.write_text("x,y\n" + "".join(f"{cell(a)},{cell(b)}\n" for a, b in x))
    return str(path)


@pytest.mark.parametrize("key", ["flow", "kde", "vae", "gan", "ddpm"])
def test_cli_families_that_cannot_exit_2_with_one_sentence(key, incomplete_csv, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["train", "--model", key, "--data-file", incomplete_csv, "--steps", "5", "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert (
        "\n" not in err
        and err.startswith("error: Row ")
        and "has an empty cell (a missing coordinate)" in err
    )
    assert f"{key} cannot learn from incomplete points (gmm and ar can): add --missing drop." in err
    assert not out.exists()  # refused before anything is written


def test_cli_gmm_uses_incomplete_rows_and_flow_drops_them(incomplete_csv, tmp_path, capsys):
    base = ["train", "--data-file", incomplete_csv, "--steps", "30", "--out"]
    assert main(base + [str(tmp_path / "g"), "--model", "gmm"]) == 0
    data = json.loads((tmp_path / "g" / "config.json").read_text())["data"]
    assert data["incomplete_rows"] == 150 and data["rows"] == 150
    assert main(base + [str(tmp_path / "f"), "--model", "flow", "--missing", "drop"]) == 0
    assert "incomplete_rows" not in json.loads((tmp_path / "f" / "config.json").read_text())["data"]
    assert main(base + [str(tmp_path / "x"), "--model", "gmm", "--missing", "keep"]) == 2
    assert "invalid choice: 'keep'" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x")


def test_datasets_page_shows_incomplete_rows_used_beside_dropped_and_the_volume():
    import time

    from streamlit.testing.v1 import AppTest

    from tests.conftest import built, charts

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    at = AppTest.from_file(os.path.join(root, "pages", "datasets.py"), default_timeout=180).run()
    assert not at.exception, [e.value for e in at.exception]
    at.toggle(key="datasets.incomplete").set_value(True).run()
    runner = at.session_state["runner"]
    t0 = time.time()
    while time.time() - t0 < 90 and not all(built(runner, f"datasets/gmm_{k}") for k in ("use", "drop")):
        time.sleep(0.2)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(charts(at)) >= 5  # truth, GMM, used, dropped, volume
    assert any("95 % of the mass of Two moons lies in" in c.value for c in at.caption)


def test_cli_ar_learns_from_rows_missing_x2_with_either_conditioner(incomplete_csv, tmp_path):
    for cond in ("made", "gru"):
        out = tmp_path / cond
        argv = ["train", "--model", "ar", "--data-file", incomplete_csv, "--steps", "20", "--out", str(out)]
        assert main(argv + ["--set", f"conditioner={cond}"]) == 0
        assert json.loads((out / "config.json").read_text())["config"]["conditioner"] == cond
