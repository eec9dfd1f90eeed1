"""The share of the box that holds 95 % of the mass, against cases with a known answer."""

import numpy as np
import pytest
from scipy.special import gammaln
from scipy.stats import chi2

from lab.data import dataset_volume_share, make_dataset, volume_share

BOX = (-6.0, 6.0, -6.0, 6.0)
AREA = 144.0
DIMS = (2, 4, 8, 16, 32)
COV = np.array([[1.0, 0.3], [0.3, 0.25]])


def _gauss_log_prob(x):
    prec = np.linalg.inv(COV)
    return -0.5 * np.einsum("ni,ij,nj->n", x, prec, x) - np.log(2 * np.pi) - 0.5 * np.log(np.linalg.det(COV))


def _ellipsoid_share(d):
    """The 95 % region of N(0, blockdiag(COV, ..., COV)) in d dimensions: an ellipsoid of Mahalanobis
    radius^2 = chi2_d(0.95), volume V_d r^d sqrt(det), over the box's AREA^(d/2)."""
    r2, k = chi2.ppf(0.95, d), d // 2
    log_ball = (d / 2) * np.log(np.pi) - gammaln(d / 2 + 1) + (d / 2) * np.log(r2)
    return np.exp(log_ball + k * 0.5 * np.log(np.linalg.det(COV)) - k * np.log(AREA))


def _half_uniform(x):
    return np.where(x[:, 0] < 0, np.log(2 / AREA), -np.inf)


def test_uniform_on_half_the_box():
    """Every point of the support has the same density: the 95 % region is 95 % of the support, whose
    share of the box^(d/2) is 0.5^(d/2)."""
    want = [0.95 * 0.5 ** (d // 2) for d in DIMS]
    np.testing.assert_allclose(volume_share(_half_uniform, BOX, DIMS, grid=100).share, want, rtol=1e-9)
    x = np.random.default_rng(0).uniform([-6, -6], [0, 6], (2000, 2))
    np.testing.assert_allclose(volume_share(_half_uniform, BOX, DIMS, samples=x).share, want, rtol=1e-9)


def test_gaussian_hdr_ellipse():
    want = np.array([_ellipsoid_share(d) for d in DIMS])
    assert want[0] == pytest.approx(np.pi * chi2.ppf(0.95, 2) * np.sqrt(np.linalg.det(COV)) / AREA)
    grid = volume_share(_gauss_log_prob, BOX, DIMS, grid=600).share
    np.testing.assert_allclose(grid, want, rtol=5e-3)
    x = np.random.default_rng(1).multivariate_normal([0, 0], COV, 20_000)
    np.testing.assert_allclose(volume_share(_gauss_log_prob, BOX, DIMS, samples=x).share, want, rtol=0.25)
    assert want[-1] < 1e-18  # the point of the lesson: at d = 32 a Gaussian fills almost none of its box


def test_two_dimensional_share_is_the_sorted_grid_region():
    """In 2D the region is the densest cells down to 95 % of the mass: sort the cells and count."""
    ds = make_dataset("8gaussians", std=0.1)
    box, g = ds.bounds(), 400
    got = volume_share(ds.log_prob, box, (2,), grid=g).share[0]
    gx = box[0] + (np.arange(g) + 0.5) * (box[1] - box[0]) / g
    gy = box[2] + (np.arange(g) + 0.5) * (box[3] - box[2]) / g
    p = np.exp(ds.log_prob(np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)))
    cum = np.cumsum(np.sort(p)[::-1]) / p.sum()
    assert got == pytest.approx((np.searchsorted(cum, 0.95) + 1) / g**2, rel=0.01)


@pytest.mark.parametrize("name", ["8gaussians", "checkerboard"])
def test_samples_agree_with_the_grid_and_the_share_shrinks_with_dimension(name):
    ds = make_dataset(name)
    by_samples = dataset_volume_share(ds, DIMS).share
    by_grid = volume_share(ds.log_prob, ds.bounds(), DIMS, grid=1000).share
    assert np.all(np.diff(np.log(by_samples)) < -1)  # each doubling of d loses more than a factor e
    np.testing.assert_allclose(by_samples[:3], by_grid[:3], rtol=0.1)
    np.testing.assert_allclose(np.log(by_samples), np.log(by_grid), atol=0.5)  # within 1.65x at d = 32
