"""The classical references: the GMM's EM steps against scikit-learn's own EM, and EM's monotone likelihood."""

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from lab.classical import GMM, GMMConfig
from lab.data import make_dataset


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the reference runs exactly 12 iterations
def test_each_train_step_is_one_em_iteration_and_never_lowers_the_likelihood():
    x = make_dataset("8gaussians").sample(2000, seed=0)
    m = GMM(GMMConfig(n_components=8, bic=False), x, seed=0)
    bounds = [m.train_step(None)["nll"] for _ in range(12)]
    # EM's guarantee (Dempster et al. 1977): the log-likelihood never decreases, so the NLL never rises
    assert all(b1 <= b0 + 1e-9 for b0, b1 in zip(bounds[1:], bounds[2:])), bounds
    # scikit-learn's EM from the same initialisation, run for the same 12 iterations, lands on the same fit
    ref = GaussianMixture(8, covariance_type="full", random_state=0, max_iter=12, tol=0.0, init_params="k-means++")
    ref.fit(m._x64())
    order = lambda mu: np.lexsort(mu.T)  # noqa: E731  (components may come out in any order)
    np.testing.assert_allclose(m.gm.means_[order(m.gm.means_)], ref.means_[order(ref.means_)], atol=1e-6)
    np.testing.assert_allclose(np.sort(m.gm.weights_), np.sort(ref.weights_), atol=1e-8)
    assert abs(-bounds[-1] - ref.lower_bound_) < 1e-3  # our last bound is the E step before the 12th M step
