"""RunSpec.refit: after choosing k (GMM) or the bandwidth (KDE) on the Run's training split, the classical
references fit once more with the held-out points added, as scikit-learn's refit=True does."""

import math

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from lab.classical import GMM, KDE, GMMConfig, KDEConfig, _kde_log_prob
from lab.data import make_dataset, points_from_array
from lab.run import RunSpec, fit


def test_kde_refit_adds_the_points_as_kernels_with_the_bandwidth_shrunk_at_the_2d_rate():
    x = make_dataset("moons").sample(200, seed=0)
    m = KDE(KDEConfig(kernel="standardised"), x[:180], seed=0)
    while not m.converged:
        m.train_step(None)
    h = m.h
    m.refit(x[180:])
    assert len(m.centres) == 200
    assert math.isclose(m.h, h * (180 / 200) ** (1 / 6))
    # the density is the KDE of all 200 points (in the scaling fitted on the first 180) with that bandwidth
    test = make_dataset("moons").sample(500, seed=1)
    by_hand = _kde_log_prob(m.to_z(test), m.to_z(x), m.h) + m.scaler.log_det
    torch.testing.assert_close(m.log_prob(test).double(), by_hand.float().double(), atol=1e-4, rtol=0)


def test_gmm_refit_runs_em_on_every_point_with_the_chosen_number_of_components():
    x = make_dataset("8gaussians").sample(400, seed=0)
    m = GMM(GMMConfig(), x[:360], seed=0)
    while not m.converged:
        m.train_step(None)
    k = m.k
    m.refit(x[360:])
    assert m.k == k and m.converged and len(m.train_z) == 400
    # a converged EM on all 400 points: one more step from scikit-learn's EM changes nothing
    ref = GaussianMixture(
        k,
        max_iter=1,
        weights_init=m.gm.weights_,
        means_init=m.gm.means_,
        precisions_init=m.gm.precisions_,
    )
    ref.fit(m._x64())
    np.testing.assert_allclose(ref.means_, m.gm.means_, atol=1e-3)


def test_a_run_refits_only_when_asked():
    pts = points_from_array(make_dataset("moons").sample(200, seed=3))
    plain = fit(RunSpec("kde", pts, seed=3))
    refit = fit(RunSpec("kde", pts, seed=3, refit=True))
    assert len(plain.model.centres) == 180 and len(refit.model.centres) == 200
    # the refit density puts the held-out points inside the fit: they score higher than before
    held_out = refit.val_x
    assert float(refit.model.log_prob(held_out).mean()) > float(plain.model.log_prob(held_out).mean())
