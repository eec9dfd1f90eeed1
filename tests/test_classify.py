"""Labelled data, CSV labels, the exact vs numerical marginal, and both kinds of classifier against the Bayes-optimal one."""

import math

import numpy as np
import pytest

from lab.classical import GMMConfig
from lab.classify import (
    DiscriminativeClassifier,
    GenerativeClassifier,
    accuracy,
    fit_generative,
    label_curve,
    labelled_dataset,
    marginal_log_prob,
    missing_curve,
    missing_range,
    parse_labelled_csv,
    proba_grid,
    true_posterior,
)
from lab.data import DataError


def test_moons_labels_are_the_arcs():
    d = labelled_dataset("moons", 1000, seed=1, noise=0.005)
    up, lo = d.of_class(0), d.of_class(1)
    assert np.abs(np.hypot(up[:, 0], up[:, 1]) - 1).max() < 0.03  # the outer arc x = (cos t, sin t)
    assert (
        np.abs(np.hypot(lo[:, 0] - 1, lo[:, 1] - 0.5) - 1).max() < 0.03
    )  # the inner arc (1 - cos t, 0.5 - sin t)
    assert 400 < len(up) < 600 and d.classes == ["upper moon", "lower moon"]
    again = labelled_dataset("moons", 1000, seed=1, noise=0.005)
    assert np.array_equal(d.x, again.x) and np.array_equal(d.y, again.y)


def test_mixture_labels_are_component_mod_classes():
    d = labelled_dataset("8gaussians", 800, seed=0, n_classes=3)
    means = 2 * np.stack([np.cos(np.arange(8) * math.pi / 4), np.sin(np.arange(8) * math.pi / 4)], 1)
    nearest = ((d.x[:, None] - means[None]) ** 2).sum(-1).argmin(1)
    assert np.array_equal(nearest % 3, d.y)
    with pytest.raises(DataError, match="2 to 8 classes"):
        labelled_dataset("8gaussians", 10, n_classes=9)
    with pytest.raises(DataError, match="no labels"):
        labelled_dataset("checkerboard")


def test_scarce_and_split():
    d = labelled_dataset("circles", 600, seed=0)
    tr, te = d.split(0.25, seed=0)
    assert len(tr.y) + len(te.y) == 600 and len(te.y) == 150
    assert not set(map(tuple, tr.x)) & set(map(tuple, te.x))
    s = tr.scarce(5, seed=0)
    assert np.array_equal(np.bincount(s.y), [5, 5])


def test_csv_labels_words_and_header():
    d = parse_labelled_csv("x,y,label\n0,0,cat\n1,1,dog\n0.1,0,cat\n1,0.9,dog\n")
    assert d.classes == ["cat", "dog"] and d.y.tolist() == [0, 1, 0, 1] and d.x.shape == (4, 2)
    d = parse_labelled_csv("0;0;1\n1;1;2\n0;1;1\n1;0;2\n")
    assert d.classes == ["1", "2"]


@pytest.mark.parametrize(
    "text, msg",
    [
        ("0,0\n1,1\n", "Row 1 has 2 columns"),
        ("0,0,a\n1,x,b\n", "Row 2 has 'x', which is not a number"),
        ("0,0,a\n1,1,a\n", "a classifier needs at least 2 classes"),
        ("0,0,a\n1,1,b\n2,2,a\n", "'b' has only 1 point"),
        ("0,0,a\n1,nan,b\n", "Row 2 has a missing or infinite value"),
        ("0,0,a\n1,1,\n", "Row 2 has no label"),
        ("x,y,label\n", "no data rows"),
    ],
)
def test_csv_errors_are_one_sentence(text, msg):
    with pytest.raises(DataError, match=msg) as e:
        parse_labelled_csv(text)
    assert "\n" not in str(e.value) and str(e.value).endswith(".")


@pytest.fixture(scope="module")
def eight():
    d = labelled_dataset("8gaussians", 1600, seed=0, n_classes=2, std=0.2)
    tr, te = d.split(0.5, seed=0)
    cfg = GMMConfig(n_components=4, bic=False)  # each class is 4 of the 8 modes; BIC would only cost time
    return tr, te, fit_generative(tr, "gmm", cfg, seed=0, max_steps=60, max_seconds=None)


def test_gmm_marginal_is_exact_and_matches_the_grid_integral(eight):
    _, _, gen = eight
    m = gen.models[0]
    v = np.linspace(-2.5, 2.5, 11)
    lo, hi = -8.0, 8.0
    exact = marginal_log_prob(m, v, keep=0, lo=lo, hi=hi)
    numeric = marginal_log_prob(m, v, keep=0, lo=lo, hi=hi, n_grid=2000, numeric=True)
    assert np.abs(exact - numeric).max() < 1e-3
    # and the marginal is a density in v: it integrates to 1
    vv = np.linspace(-8, 8, 4001)
    assert abs(np.exp(marginal_log_prob(m, vv, keep=1, lo=lo, hi=hi)).sum() * (vv[1] - vv[0]) - 1) < 1e-3


def test_generative_classifier_is_bayes_rule(eight):
    tr, te, gen = eight
    p = gen.predict_proba(te.x)
    lp = np.stack([m.log_prob(te.x).double().numpy() for m in gen.models], 1) + np.log(tr.priors())[None]
    ref = np.exp(lp - lp.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    assert np.allclose(p, ref, atol=1e-9)
    # close to the Bayes-optimal posterior of the true mixture
    assert np.abs(p - true_posterior(te, te.x)).mean() < 0.03
    assert accuracy(p, te.y) > 0.97


def test_missing_coordinate_generative_marginalises_discriminative_cannot(eight):
    tr, te, gen = eight
    log = DiscriminativeClassifier("logistic").fit(tr)
    mlp = DiscriminativeClassifier("mlp").fit(tr)
    # with x2 missing, x1 alone still tells the class on this ring (even / odd modes); the truth agrees
    x1 = te.x.copy()
    truth = true_posterior(te, te.x)
    acc_gen = accuracy(gen.predict_proba_missing(x1, missing=1), te.y)
    acc_log = accuracy(log.predict_proba_missing(x1, missing=1), te.y)
    acc_mlp = accuracy(mlp.predict_proba_missing(x1, missing=1), te.y)
    assert accuracy(mlp.predict_proba(te.x), te.y) > 0.95 and accuracy(truth, te.y) > 0.97
    assert acc_gen > 0.9 and acc_gen > acc_log + 0.2 and acc_gen > acc_mlp + 0.1
    curve = missing_curve(gen, tr, 1, -3, 3, size=50)
    assert curve["proba"].shape == (50, 2) and np.allclose(curve["proba"].sum(1), 1)


def test_proba_grid_and_a_family_without_density(eight):
    tr, _, gen = eight
    g = proba_grid(gen, (-3, 3, -3, 3), size=20)
    assert g["proba"].shape == (20, 20, 2) and np.allclose(g["proba"].sum(-1), 1)

    class NoDensity:
        has_log_prob, title = False, "GAN"

    with pytest.raises(ValueError, match="no density"):
        GenerativeClassifier([NoDensity()], np.array([1.0]))
    assert len(missing_range(tr)) == 2


def test_label_curve_runs_and_scores():
    d = labelled_dataset("moons", 1200, seed=0)
    tr, te = d.split(0.5, seed=0)
    c = label_curve(tr, te, [4, 100], key="gmm", max_seconds=1.0, config=GMMConfig(n_components=4, bic=False))
    assert set(c) == {"sizes", "logistic", "mlp", "generative"}
    # each discriminative point is the accuracy of that classifier on those labels, counted here by hand
    for i, n in enumerate(c["sizes"]):
        for kind in ("logistic", "mlp"):
            p = DiscriminativeClassifier(kind, 0).fit(tr.scarce(n, 0)).predict_proba(te.x)
            assert c[kind][i] == np.mean(p.argmax(1) == te.y)
    # more labels help every classifier; a linear boundary cannot split the moons, the others can
    assert all(c[k][1] > c[k][0] for k in ("logistic", "mlp", "generative"))
    assert 0.8 < c["logistic"][-1] < 0.95 and c["mlp"][-1] > 0.97 and c["generative"][-1] > 0.97


def test_classifiers_page_runs_and_trains():
    import os
    import time

    from streamlit.testing.v1 import AppTest

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    at = AppTest.from_file(os.path.join(root, "pages", "classifiers.py"), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.select_slider(key="classifiers.labels").set_value(50).run()
    at.button(key="classifiers.play").click().run()
    runner = at.session_state["runner"]
    t0 = time.time()
    time.sleep(0.5)
    while runner.busy and time.time() - t0 < 60:
        time.sleep(0.2)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    acc = {m.label: m.value for m in at.metric}
    assert float(acc["test accuracy, generative"].rstrip("%")) > 90  # the GMM per class on the moons halves
    assert any(k.startswith("accuracy without x2") for k in acc)
    at.selectbox(key="classifiers.data").set_value("upload").run()
    assert not at.exception and any("Upload a CSV" in i.value for i in at.info)
