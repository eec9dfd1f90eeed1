"""The classical references: the GMM's EM steps against scikit-learn's own EM, EM's monotone likelihood,
several EM starts on a mixture that one start gets wrong; the KDE's bandwidth against a by-hand leave-one-out
likelihood, its normalisation on a grid, and identical points."""

import itertools

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

from lab.classical import GMM, KDE, GMMConfig, KDEConfig
from lab.data import DataError, make_dataset


@pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)  # the reference runs exactly 12 iterations
def test_each_train_step_is_one_em_iteration_and_never_lowers_the_likelihood():
    x = make_dataset("8gaussians").sample(2000, seed=0)
    m = GMM(GMMConfig(n_components=8, bic=False, n_init=1), x, seed=0)  # one k-means++ start
    bounds = [m.train_step(None)["nll"] for _ in range(12)]
    # EM's guarantee (Dempster et al. 1977): the log-likelihood never decreases, so the NLL never rises
    assert all(b1 <= b0 + 1e-9 for b0, b1 in itertools.pairwise(bounds[1:])), bounds
    # scikit-learn's EM from the same initialisation, run for the same 12 iterations, lands on the same fit
    ref = GaussianMixture(
        8, covariance_type="full", random_state=0, max_iter=12, tol=0.0, init_params="k-means++"
    )
    ref.fit(m._x64())
    order = lambda mu: np.lexsort(mu.T)  # components may come out in any order
    np.testing.assert_allclose(m.gm.means_[order(m.gm.means_)], ref.means_[order(ref.means_)], atol=1e-6)
    np.testing.assert_allclose(np.sort(m.gm.weights_), np.sort(ref.weights_), atol=1e-8)
    assert abs(-bounds[-1] - ref.lower_bound_) < 1e-3  # our last bound is the E step before the 12th M step


def test_a_second_gmm_on_the_same_data_and_seed_reuses_the_first_ones_selection(monkeypatch):
    """Sessions opening the same link build the same GMM: its BIC fits and EM starts run once per process."""
    import lab.classical as classical

    x = make_dataset("8gaussians").sample(3000, seed=5)
    first = GMM(GMMConfig(n_components=10), x, seed=7)
    fits = []
    real_em = classical._em
    monkeypatch.setattr(classical, "_em", lambda *a, **k: fits.append(a) or real_em(*a, **k))
    again = GMM(GMMConfig(n_components=10), x, seed=7)
    assert fits == []  # nothing fitted again
    assert (again.k, again.bic_scores, again.start_scores) == (first.k, first.bic_scores, first.start_scores)
    for _ in range(5):
        assert first.train_step(None) == again.train_step(None)  # the same EM from the same start
    np.testing.assert_array_equal(again.gm.means_, first.gm.means_)
    again.bic_scores[1] = 0.0  # a model's own copy: the next build still sees the selection as it was made
    assert GMM(GMMConfig(n_components=10), x, seed=7).bic_scores == first.bic_scores
    assert fits == []
    GMM(GMMConfig(n_components=10), x, seed=8)  # another seed draws other starts: fitted
    assert fits
    fits.clear()
    GMM(GMMConfig(n_components=9), x, seed=7)  # other settings: fitted
    assert fits


# An exact 5-component mixture: unequal weights, long thin components (std ratio up to 11:1) at angles
W = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
MU = np.array([[0.0, 0.0], [3.0, 0.5], [0.5, 3.0], [3.5, 3.5], [-2.5, 2.0]])
_ANGLE = np.radians([47, 17, 34, 118, 78])
_STD = np.array([[1.0, 0.26], [1.2, 0.24], [0.85, 0.14], [1.2, 0.11], [1.25, 0.17]])
_ROT = np.stack([[np.cos(_ANGLE), -np.sin(_ANGLE)], [np.sin(_ANGLE), np.cos(_ANGLE)]]).transpose(2, 0, 1)
COV = _ROT @ (_STD[:, :, None] ** 2 * np.eye(2)) @ _ROT.transpose(0, 2, 1)


def _mixture_sample(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.choice(len(W), n, p=W)
    return MU[c] + np.einsum("nij,nj->ni", np.linalg.cholesky(COV)[c], rng.standard_normal((n, 2)))


def _mixture_log_prob(x: np.ndarray) -> np.ndarray:
    return np.log(sum(w * multivariate_normal(m, c).pdf(x) for w, m, c in zip(W, MU, COV)))


def _kl_after_em(x: np.ndarray, test: np.ndarray, **config) -> tuple[float, int]:
    """KL(truth || fitted GMM) estimated on test points, after EM to convergence; and the chosen k."""
    m = GMM(GMMConfig(**config), x, seed=3)
    for _ in range(500):
        m.train_step(None)
        if m.converged:
            break
    return float(np.mean(_mixture_log_prob(test) - m.log_prob(test).double().numpy())), m.k


def test_several_em_starts_reach_the_entropy_where_one_start_merges_two_components():
    x, test = _mixture_sample(20_000, seed=0), _mixture_sample(5000, seed=1)
    # one k-means++ start per candidate (seed 3) merges two thin components, so BIC prefers 4: 0.4 nats
    # above the true entropy
    kl_one, k_one = _kl_after_em(x, test, n_components=5, n_init=1)
    assert k_one == 4 and kl_one > 0.2, (k_one, kl_one)
    kl_five, k_five = _kl_after_em(x, test, n_components=5)
    assert k_five == 5 and kl_five < 0.005, (k_five, kl_five)
    # the default (BIC over 1..12 components, five starts around its minimum) finds the mixture, like
    # scikit-learn with several starts does; what is left is the finite-sample error of 20,000 points
    kl, k = _kl_after_em(x, test)
    assert k == 5 and kl < 0.005, (k, kl)
    ref = GaussianMixture(5, n_init=5, random_state=0).fit(x)
    kl_ref = float(np.mean(_mixture_log_prob(test) - ref.score_samples(test)))
    assert kl < kl_ref + 0.002, (kl, kl_ref)


# ---------------------------------------------------------------------------------------------
# KDE
# ---------------------------------------------------------------------------------------------


def _fitted_kde(x: np.ndarray, **config) -> KDE:
    m = KDE(KDEConfig(**config), x, seed=0)
    while not m.converged:
        m.train_step(None)
    return m


def _loo_by_hand(z: np.ndarray, h: float) -> float:
    """Leave-one-out log-likelihood, one point at a time; copies of the left-out point leave with it."""
    total = 0.0
    for i in range(len(z)):
        others = z[np.any(z != z[i], axis=1)]
        d2 = ((others - z[i]) ** 2).sum(1)
        total += logsumexp(-0.5 * d2 / h**2) - np.log(len(others)) - np.log(2 * np.pi * h**2)
    return total / len(z)


def test_kde_bandwidth_is_the_leave_one_out_maximum():
    x = make_dataset("moons").sample(300, seed=0)
    x = np.concatenate([x, x[:20]])  # repeated measurements: a twin at distance 0 must not pull h to 0
    m = _fitted_kde(x)
    z = m.centres.double().numpy()
    # the kernel is round in u = z / axis: standardised units (axis 1) or the data's own (axis g / std)
    std = x.std(0)
    shapes = {
        "standardised": (np.ones(2), m.cv_scores),
        "data": (np.sqrt(std.prod()) / std, m.cv_scores_data),
    }
    best = (-np.inf, None, None)
    for name, (axis, scores) in shapes.items():
        by_hand = {float(h): _loo_by_hand(z / axis, float(h)) - np.log(axis).sum() for h in m.grid}
        np.testing.assert_allclose([scores[h] for h in by_hand], list(by_hand.values()), rtol=1e-6)
        h = max(by_hand, key=by_hand.get)
        best = max(best, (by_hand[h], h, name))
    assert (m.h, m.kernel_shape) == best[1:]
    assert m.grid[0] < m.h < m.grid[-1]  # an interior maximum, not the edge of the grid


@pytest.mark.parametrize(("bandwidth", "kernel"), [(0.0, "auto"), (0.3, "standardised"), (0.3, "data")])
def test_kde_integrates_to_one(bandwidth, kernel):
    ds = make_dataset("moons", scale=2.5)  # data coordinates differ from the model's: the log-det counts
    m = _fitted_kde(ds.sample(300, seed=1), bandwidth=bandwidth, kernel=kernel)
    lo = m.centres.min(0).values.double().numpy() - 8 * m.h
    hi = m.centres.max(0).values.double().numpy() + 8 * m.h
    lo, hi = m.to_x(torch.as_tensor(lo)[None])[0], m.to_x(torch.as_tensor(hi)[None])[0]
    g0, g1 = np.linspace(lo[0], hi[0], 700), np.linspace(lo[1], hi[1], 700)
    xx, yy = np.meshgrid(g0, g1)
    p = np.exp(m.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).double().numpy())
    assert abs(p.sum() * (g0[1] - g0[0]) * (g1[1] - g1[0]) - 1) < 2e-3


def test_kde_on_identical_points_says_so_or_uses_the_bandwidth_it_is_given():
    x = np.tile([1.5, -2.0], (50, 1))
    with pytest.raises(DataError, match=r"same point \(1.5, -2\).*set a bandwidth"):
        KDE(KDEConfig(), x, seed=0)
    m = _fitted_kde(x, bandwidth=0.5)
    assert np.isfinite(m.log_prob(x[:3]).numpy()).all()
