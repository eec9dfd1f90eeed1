"""Toy 2D densities with their true log-density, and user points from CSV or arrays."""

from __future__ import annotations

import csv
import io
import math
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import ClassVar

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import log_ndtr, logsumexp

LOG_2PI = math.log(2 * math.pi)
MAX_ROWS = 1_000_000
MAX_BYTES = 50 * 1024 * 1024
MIN_ROWS = 10  # a held-out split and an energy-distance floor need a few points; KDE's CV needs its folds
MAX_ABS = 1e15  # coordinates beyond this overflow float32 once squared distances are taken


class DataError(ValueError):
    """Bad user data. The message is one sentence a person can act on."""


# ---------------------------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A 2D density. Subclasses define `_sample_unit` and `_log_prob_unit` before `scale`."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    has_density: ClassVar[bool] = True
    scale: float = field(
        default=1.0, metadata={"min": 0.1, "max": 10.0, "help": "multiplies every coordinate"}
    )

    def __getstate__(self) -> dict:
        # the quadrature cache (a KD-tree) is rebuilt where it is needed: it need not cross to a worker
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    # -- public -------------------------------------------------------------------------------
    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n points, shape [n, 2], float64, reproducible for a given seed."""
        rng = np.random.default_rng(seed)
        return self._sample_unit(int(n), rng) * self.scale

    def log_prob(self, x: np.ndarray) -> np.ndarray:
        """True log-density at x [n, 2] (the scaling contributes -2 log scale)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, 2)
        out = np.empty(len(x))
        for i in range(0, len(x), 65536):  # chunks keep the [n, K] quadrature matrices small
            out[i : i + 65536] = self._log_prob_unit(x[i : i + 65536] / self.scale)
        return out - 2 * math.log(self.scale)

    def bounds(self) -> tuple[float, float, float, float]:
        """Plot window (xmin, xmax, ymin, ymax) in data coordinates that holds the density."""
        b = np.array(self._bounds_unit()) * self.scale
        return tuple(float(v) for v in b)

    @property
    def modes(self) -> np.ndarray | None:
        """Mode centres for mixture datasets (mode coverage), else None."""
        return None

    @property
    def mode_std(self) -> float | None:
        return None

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def incomplete_rows(self, train: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(complete rows [n, 2], rows with one missing coordinate [m, 2], NaN where missing) of a
        training sample. A built-in density's samples are complete; user points and MissingData are not."""
        return train, np.zeros((0, 2))

    # -- for subclasses -----------------------------------------------------------------------
    def _sample_unit(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _log_prob_unit(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _bounds_unit(self) -> tuple[float, float, float, float]:
        return (-4.0, 4.0, -4.0, 4.0)


def _gauss_mixture_logpdf(x: np.ndarray, means: np.ndarray, log_w: np.ndarray, std: float) -> np.ndarray:
    """log sum_k w_k N(x; mean_k, std^2 I) for x [n, 2], means [K, 2]."""
    d2 = ((x[:, None, :] - means[None, :, :]) ** 2).sum(-1)  # [n, K]
    return logsumexp(log_w[None, :] - 0.5 * d2 / std**2, axis=1) - LOG_2PI - 2 * math.log(std)


# ---------------------------------------------------------------------------------------------
# Noisy curves: x = c(t) + noise * eps, t ~ p(t). The density is the Gaussian mixture along the
# curve, p(x) = int p(t) N(x; c(t), noise^2 I) dt, evaluated by quadrature on a grid in t whose
# spacing in arc length is noise / 4: the midpoint rule's error is then exponentially small.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveDataset(Dataset):
    noise: float = field(
        default=0.05, metadata={"min": 0.005, "max": 1.0, "help": "std of the Gaussian noise"}
    )

    def _pieces(self) -> list[tuple[float, Callable, float, float, Callable | None]]:
        """[(weight, curve(t)->[n,2], t_lo, t_hi, log_density_of_t(t) or None for uniform)]."""
        raise NotImplementedError

    def _sample_unit(self, n, rng):
        return self.sample_pieces(n, rng)[0]

    def sample_pieces(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Points before `scale` [n, 2] and the curve piece each came from [n] (a label: which moon)."""
        pieces = self._pieces()
        w = np.array([p[0] for p in pieces])
        which = rng.choice(len(pieces), size=n, p=w / w.sum())
        out = np.empty((n, 2))
        for k, (_, curve, lo, hi, t_sampler) in enumerate(pieces):
            idx = np.flatnonzero(which == k)
            t = t_sampler(len(idx), rng) if t_sampler is not None else rng.uniform(lo, hi, len(idx))
            out[idx] = curve(t)
        return out + self.noise * rng.standard_normal((n, 2)), which

    def _quadrature(self):
        """Cached nodes [K, 2], log-weights [K] and a KD-tree of the nodes for the mixture along the curve."""
        cache = self.__dict__.get("_quad")
        if cache is not None:
            return cache
        pieces = self._pieces()
        w = np.array([p[0] for p in pieces])
        w = w / w.sum()
        nodes, logw = [], []
        for wk, (_, curve, lo, hi, _s) in zip(w, pieces):
            # arc length on a fine probe grid decides how many quadrature nodes this piece needs
            probe = curve(np.linspace(lo, hi, 4001))
            length = np.linalg.norm(np.diff(probe, axis=0), axis=1).sum()
            k = int(min(max(length / (self.noise / 4), 64), 200_000))
            edges = np.linspace(lo, hi, k + 1)
            t = 0.5 * (edges[1:] + edges[:-1])
            log_pt = self._log_pt(wk, pieces, t, lo, hi)
            nodes.append(curve(t))
            logw.append(math.log(wk) + log_pt + np.log(np.diff(edges)))
        nodes = np.concatenate(nodes)
        cache = (nodes, np.concatenate(logw), cKDTree(nodes))
        object.__setattr__(self, "_quad", cache)
        return cache

    def _log_pt(self, wk, pieces, t, lo, hi):
        """log p(t) within one piece; uniform unless a subclass says otherwise."""
        return np.full_like(t, -math.log(hi - lo))

    def _log_prob_unit(self, x):
        nodes, logw, tree = self._quadrature()
        # Only the nearest nodes matter: with spacing noise/4, the 64 nearest span 16 noise-widths
        # of curve, and the rest weigh less than exp(-30) relative to them.
        k = min(64, len(nodes))
        d, idx = tree.query(x, k=k)
        d, idx = d.reshape(len(x), k), idx.reshape(len(x), k)
        return logsumexp(logw[idx] - 0.5 * d**2 / self.noise**2, axis=1) - LOG_2PI - 2 * math.log(self.noise)


@dataclass(frozen=True)
class Moons(CurveDataset):
    """scikit-learn's two moons, with the angle drawn uniformly instead of on a linspace."""

    name: ClassVar[str] = "moons"
    title: ClassVar[str] = "Two moons"

    def _pieces(self):
        outer = lambda t: np.stack([np.cos(t), np.sin(t)], 1)
        inner = lambda t: np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)
        return [(1.0, outer, 0.0, math.pi, None), (1.0, inner, 0.0, math.pi, None)]

    def _bounds_unit(self):
        return (-1.6, 2.6, -1.1, 1.6)


@dataclass(frozen=True)
class Circles(CurveDataset):
    """scikit-learn's two circles: radius 1 and radius `factor`."""

    name: ClassVar[str] = "circles"
    title: ClassVar[str] = "Two circles"
    factor: float = field(default=0.5, metadata={"min": 0.1, "max": 0.95, "help": "inner radius"})

    def _pieces(self):
        circle = lambda r: lambda t: r * np.stack([np.cos(t), np.sin(t)], 1)
        return [
            (1.0, circle(1.0), 0.0, 2 * math.pi, None),
            (1.0, circle(self.factor), 0.0, 2 * math.pi, None),
        ]

    def _bounds_unit(self):
        return (-1.5, 1.5, -1.5, 1.5)


@dataclass(frozen=True)
class Rings(CurveDataset):
    """Concentric rings of radius 0.75, 1.5, ... (FFJORD's rings), equal mass per ring."""

    name: ClassVar[str] = "rings"
    title: ClassVar[str] = "Concentric rings"
    noise: float = field(
        default=0.08, metadata={"min": 0.005, "max": 1.0, "help": "std of the Gaussian noise"}
    )
    n_rings: int = field(default=4, metadata={"min": 1, "max": 8, "help": "number of rings"})

    def _pieces(self):
        circle = lambda r: lambda t: r * np.stack([np.cos(t), np.sin(t)], 1)
        return [(1.0, circle(0.75 * (k + 1)), 0.0, 2 * math.pi, None) for k in range(self.n_rings)]

    def _bounds_unit(self):
        r = 0.75 * self.n_rings + 0.6
        return (-r, r, -r, r)


@dataclass(frozen=True)
class TwoSpirals(CurveDataset):
    """FFJORD's two spirals: angle n = sqrt(u) * 3 pi (so p(n) is proportional to n), scaled by 1/3."""

    name: ClassVar[str] = "2spirals"
    title: ClassVar[str] = "Two spirals"
    noise: float = field(
        default=0.1, metadata={"min": 0.005, "max": 1.0, "help": "std of the Gaussian noise"}
    )
    T_MAX: ClassVar[float] = 3 * math.pi

    def _pieces(self):
        arm = lambda s: lambda n: s * np.stack([-np.cos(n) * n, np.sin(n) * n], 1) / 3
        sampler = lambda m, rng: np.sqrt(rng.uniform(0, 1, m)) * self.T_MAX
        return [(1.0, arm(1.0), 0.0, self.T_MAX, sampler), (1.0, arm(-1.0), 0.0, self.T_MAX, sampler)]

    def _log_pt(self, wk, pieces, t, lo, hi):
        return np.log(2 * t / self.T_MAX**2)  # density of sqrt(u) * T

    def _bounds_unit(self):
        return (-4.0, 4.0, -4.0, 4.0)


@dataclass(frozen=True)
class Swissroll(CurveDataset):
    """scikit-learn's swiss roll in the (x, z) plane, divided by 5 (FFJORD): t ~ U(1.5 pi, 4.5 pi)."""

    name: ClassVar[str] = "swissroll"
    title: ClassVar[str] = "Swiss roll"
    noise: float = field(
        default=0.1, metadata={"min": 0.005, "max": 1.0, "help": "std of the Gaussian noise"}
    )

    def _pieces(self):
        roll = lambda t: np.stack([t * np.cos(t), t * np.sin(t)], 1) / 5
        return [(1.0, roll, 1.5 * math.pi, 4.5 * math.pi, None)]

    def _bounds_unit(self):
        return (-3.2, 3.2, -3.2, 3.2)


@dataclass(frozen=True)
class Pinwheel(CurveDataset):
    """Pinwheel arms: radius s ~ N(1, radial_std), angle 2 pi k / K + rate * exp(s), isotropic noise.

    FFJORD rotates a tangential perturbation; here the noise is isotropic so the density is the
    exact Gaussian mixture along each arm (the arms look the same).
    """

    name: ClassVar[str] = "pinwheel"
    title: ClassVar[str] = "Pinwheel"
    noise: float = field(
        default=0.1, metadata={"min": 0.005, "max": 1.0, "help": "std of the Gaussian noise"}
    )
    n_arms: int = field(default=5, metadata={"min": 2, "max": 10, "help": "number of arms"})
    radial_std: float = field(
        default=0.3, metadata={"min": 0.05, "max": 1.0, "help": "spread along each arm"}
    )
    rate: float = field(default=0.25, metadata={"min": 0.0, "max": 1.0, "help": "how much the arms curl"})

    def _pieces(self):
        def arm(k):
            def c(s):
                a = 2 * math.pi * k / self.n_arms + self.rate * np.exp(s)
                return 2 * s[:, None] * np.stack([np.cos(a), np.sin(a)], 1)

            return c

        lo, hi = 1 - 6 * self.radial_std, 1 + 6 * self.radial_std
        sampler = lambda m, rng: 1 + self.radial_std * rng.standard_normal(m)
        return [(1.0, arm(k), lo, hi, sampler) for k in range(self.n_arms)]

    def _log_pt(self, wk, pieces, t, lo, hi):
        return -0.5 * ((t - 1) / self.radial_std) ** 2 - 0.5 * LOG_2PI - math.log(self.radial_std)

    def _bounds_unit(self):
        r = 2 * (1 + 3 * self.radial_std) + 0.5
        return (-r, r, -r, r)


# ---------------------------------------------------------------------------------------------
# Gaussian mixtures (exact densities; they also define modes for mode coverage)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixtureDataset(Dataset):
    std: float = field(default=0.02, metadata={"min": 0.005, "max": 1.0, "help": "std of each component"})

    def _means(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def modes(self):
        return self._means() * self.scale

    @property
    def mode_std(self):
        return self.std * self.scale

    def _sample_unit(self, n, rng):
        means = self._means()
        k = rng.integers(0, len(means), n)
        return means[k] + self.std * rng.standard_normal((n, 2))

    def _log_prob_unit(self, x):
        means = self._means()
        return _gauss_mixture_logpdf(x, means, np.full(len(means), -math.log(len(means))), self.std)


@dataclass(frozen=True)
class EightGaussians(MixtureDataset):
    name: ClassVar[str] = "8gaussians"
    title: ClassVar[str] = "8 Gaussians (ring)"
    radius: float = field(
        default=2.0, metadata={"min": 0.5, "max": 5.0, "help": "radius of the ring of modes"}
    )

    def _means(self):
        a = np.arange(8) * math.pi / 4
        return self.radius * np.stack([np.cos(a), np.sin(a)], 1)

    def _bounds_unit(self):
        r = self.radius + 0.8
        return (-r, r, -r, r)


@dataclass(frozen=True)
class TwentyFiveGaussians(MixtureDataset):
    name: ClassVar[str] = "25gaussians"
    title: ClassVar[str] = "25 Gaussians (grid)"
    std: float = field(default=0.05, metadata={"min": 0.005, "max": 1.0, "help": "std of each component"})

    def _means(self):
        g = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
        return np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)

    def _bounds_unit(self):
        return (-5.2, 5.2, -5.2, 5.2)


# ---------------------------------------------------------------------------------------------
# Checkerboard: uniform on the 8 dark unit squares of [-2, 2]^2, blurred by Gaussian noise so the
# density is positive everywhere: p(x) = 1/8 sum_squares prod_d [Phi((b-x)/s) - Phi((a-x)/s)].
# ---------------------------------------------------------------------------------------------


def _log_diff_ndtr(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """log(Phi(hi) - Phi(lo)) for hi > lo, stable in both tails."""
    flip = lo > 0  # both in the right tail: use the mirror image Phi(-lo) - Phi(-hi)
    a = np.where(flip, -hi, lo)
    b = np.where(flip, -lo, hi)
    la, lb = log_ndtr(a), log_ndtr(b)
    return lb + np.log1p(-np.exp(np.minimum(la - lb, -1e-300)))


@dataclass(frozen=True)
class Checkerboard(Dataset):
    name: ClassVar[str] = "checkerboard"
    title: ClassVar[str] = "Checkerboard"
    noise: float = field(
        default=0.02, metadata={"min": 0.005, "max": 0.5, "help": "blur at the square edges"}
    )

    def _squares(self) -> np.ndarray:
        """Lower-left corners [8, 2] of the dark squares."""
        return np.array([(i, j) for i in range(-2, 2) for j in range(-2, 2) if (i + j) % 2 == 0], dtype=float)

    def _sample_unit(self, n, rng):
        sq = self._squares()
        return (
            sq[rng.integers(0, 8, n)] + rng.uniform(0, 1, (n, 2)) + self.noise * rng.standard_normal((n, 2))
        )

    def _log_prob_unit(self, x):
        sq = self._squares()  # [8, 2]
        lo = (sq[None] - x[:, None]) / self.noise  # [n, 8, 2]
        hi = (sq[None] + 1 - x[:, None]) / self.noise
        per_square = _log_diff_ndtr(lo, hi).sum(-1)  # [n, 8]
        return logsumexp(per_square, axis=1) - math.log(8)

    def _bounds_unit(self):
        return (-2.5, 2.5, -2.5, 2.5)


DATASETS: dict[str, type[Dataset]] = {
    cls.name: cls
    for cls in (
        Moons,
        Circles,
        Rings,
        EightGaussians,
        TwentyFiveGaussians,
        TwoSpirals,
        Checkerboard,
        Pinwheel,
        Swissroll,
    )
}


def make_dataset(name: str, **params) -> Dataset:
    """Build a built-in dataset by name; unknown names or parameters raise DataError."""
    if name not in DATASETS:
        raise DataError(f"Unknown dataset '{name}'; choose one of {', '.join(DATASETS)}.")
    cls = DATASETS[name]
    known = {f.name: f for f in fields(cls)}
    clean = {}
    for k, v in params.items():
        if k not in known:
            raise DataError(f"Dataset '{name}' has no parameter '{k}'; it has {', '.join(known)}.")
        f = known[k]
        whole = f.type in ("int", int)
        try:
            v = float(v)
        except (TypeError, ValueError, OverflowError):
            raise DataError(f"Dataset parameter {k} must be a number, got '{str(v)[:40]}'.") from None
        if whole and math.isfinite(v) and v != int(v):
            raise DataError(f"Dataset parameter {k} must be a whole number, got {v:g}.")
        v = int(v) if whole and math.isfinite(v) else v
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
            raise DataError(f"Dataset parameter {k}={v} is outside [{lo}, {hi}].")
        clean[k] = v
    return cls(**clean)


def dataset_fields(name: str) -> list:
    """The dataclass fields (with min/max/help metadata) a page turns into widgets."""
    return list(fields(DATASETS[name]))


# ---------------------------------------------------------------------------------------------
# User points
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PointsDataset(Dataset):
    """A user's own points. No true density: metrics use a held-out split instead."""

    name: ClassVar[str] = "points"
    title: ClassVar[str] = "Your points"
    has_density: ClassVar[bool] = False
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    label: str = "points"
    # rows with one empty cell: [m, 2] with NaN where the coordinate is missing (gmm and ar learn from them)
    incomplete: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    first_incomplete_row: int = 0  # the file's row number of the first one, for messages

    def sample(self, n, seed=0):
        """Bootstrap draw from the points (with replacement); the points themselves when n is their count."""
        rng = np.random.default_rng(seed)
        if n == len(self.points):
            return self.points[rng.permutation(n)].copy()
        return self.points[rng.integers(0, len(self.points), n)].copy()

    def log_prob(self, x):
        raise NotImplementedError("Your own points have no known true density.")

    def bounds(self):
        lo, hi = np.quantile(self.points, [0.0, 1.0], axis=0)
        pad = 0.15 * np.maximum(hi - lo, 1e-3)
        return (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))

    def params(self):
        extra = {"incomplete": len(self.incomplete)} if len(self.incomplete) else {}
        return {"label": self.label, "n": len(self.points), **extra}

    def incomplete_rows(self, train, seed=0):
        return train, self.incomplete

    def without_incomplete(self) -> PointsDataset:
        """The complete rows only (what `--missing drop` trains on); the same object each time, so a page's
        run does not see new data on every rerun."""
        if not len(self.incomplete):
            return self
        if "_complete" not in self.__dict__:
            object.__setattr__(
                self, "_complete", replace(self, incomplete=np.zeros((0, 2)), first_incomplete_row=0)
            )
        return self.__dict__["_complete"]


# ---------------------------------------------------------------------------------------------
# Training with missing data: which families can, and a built-in density with coordinates knocked out
# ---------------------------------------------------------------------------------------------

FAMILIES_WITH_MISSING = "gmm and ar"  # the families whose class sets learns_from_incomplete


def refuse_incomplete(ds: Dataset, family: str, m: int) -> None:
    """The DataError, one sentence, for `m` training rows with a missing coordinate that `family` cannot use."""
    s = "s" if m != 1 else ""
    where = (
        f"Row {ds.first_incomplete_row} has an empty cell (a missing coordinate), one of {m:,} incomplete row{s}"
        if isinstance(ds, PointsDataset) and ds.first_incomplete_row
        else f"{m:,} training row{s} miss a coordinate"
    )
    raise DataError(
        f"{where}, and {family} cannot learn from incomplete points ({FAMILIES_WITH_MISSING} can): "
        "drop those rows (--missing drop, or 'drop' under the upload)."
    )


def knock_out(x: np.ndarray, share: float, which: str = "either", seed: int = 0) -> np.ndarray:
    """A copy of x [n, 2] where a random `share` of the rows lose one coordinate (NaN), missing completely
    at random: `which` is "x1", "x2" or "either" (each with probability 1/2)."""
    rng = np.random.default_rng(seed)
    out = np.array(x, dtype=np.float64)
    rows = rng.permutation(len(out))[: int(round(share * len(out)))]
    col = {"x1": np.zeros(len(rows), int), "x2": np.ones(len(rows), int)}.get(which)
    if col is None:
        col = rng.integers(0, 2, len(rows))
    out[rows, col] = np.nan
    return out


@dataclass(frozen=True)
class MissingData(Dataset):
    """A built-in density whose training rows lose a coordinate: `share` of them miss x1, x2 or either
    (missing completely at random, Rubin 1976). `drop` keeps only the complete rows: the baseline that
    sees the very same complete rows. The truth, test points and metrics are the source's."""

    source: Dataset = field(default_factory=lambda: Moons())
    share: float = 0.5
    which: str = "either"
    drop: bool = False

    def __post_init__(self):  # `scale` (the base's field) comes first: MissingData(ds, 0.5) would misfire
        if not isinstance(self.source, Dataset) or not isinstance(self.scale, (int, float)):
            raise TypeError("MissingData takes keywords: MissingData(source=ds, share=0.5).")

    @property
    def name(self):  # noqa: D102  (the source's: evaluators and truth grids are shared with it)
        return self.source.name

    @property
    def title(self):
        return f"{self.source.title}, {self.share:.0%} of rows missing {self.which}"

    def sample(self, n, seed=0):
        return self.source.sample(n, seed)

    def log_prob(self, x):
        return self.source.log_prob(x)

    def bounds(self):
        return self.source.bounds()

    @property
    def modes(self):
        return self.source.modes

    @property
    def mode_std(self):
        return self.source.mode_std

    def params(self):
        return self.source.params()

    def incomplete_rows(self, train, seed=0):
        x = knock_out(train, self.share, self.which, seed + 7)
        full = ~np.isnan(x).any(1)
        return x[full], (np.zeros((0, 2)) if self.drop else x[~full])


def points_from_array(a, label: str = "points") -> PointsDataset:
    """Validate an array-like of shape [n, 2] and wrap it as a dataset."""
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("The points must be numbers.") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise DataError(f"The points must have two columns (x, y); got shape {tuple(arr.shape)}.")
    if len(arr) == 0:
        raise DataError("There are no points.")
    if len(arr) < 2:
        raise DataError("At least 2 points are needed to train a model.")
    if len(arr) > MAX_ROWS:
        raise DataError(f"There are {len(arr):,} points; the limit is {MAX_ROWS:,}.")
    bad = np.flatnonzero(~np.isfinite(arr).all(1))
    if len(bad):
        raise DataError(f"Point {bad[0] + 1} is not a finite number (NaN or infinity).")
    return PointsDataset(points=arr, label=label)


def _parse_float(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def check_spread(points: np.ndarray) -> None:
    """Refuse points that have no 2D density: all the same point, or one coordinate that never changes.

    A column counts as constant when its spread is below what float32 (the models' precision) can
    resolve at its magnitude, or below the 1e-8 that standardisation treats as zero."""
    std = points.std(0)
    tiny = np.maximum(1e-8, 1e-6 * np.abs(points).max(0))
    flat = std <= tiny
    if flat.all():
        p = points[0]
        raise DataError(
            f"All {len(points):,} points are the same point ({p[0]:.6g}, {p[1]:.6g}); "
            "a density needs points that differ."
        )
    if flat.any():
        k = int(np.flatnonzero(flat)[0])
        if np.ptp(points[:, k]) > 0:
            raise DataError(
                f"Column {k + 1} ({'xy'[k]}) varies by only {np.ptp(points[:, k]):.2g} around "
                f"{points[0, k]:.8g}, below what the models' 32-bit numbers resolve; "
                "subtract an offset or rescale it."
            )
        raise DataError(
            f"Every point has {'xy'[k]} = {points[0, k]:.6g} (column {k + 1} never changes), "
            "so the points lie on a line and have no 2D density."
        )


def parse_points_csv(
    text: str, label: str = "points", training: bool = True, missing: str = "use", cannot: str = ""
) -> PointsDataset:
    """Parse CSV text with two numeric columns (comma, semicolon or tab; header optional).

    Each row two finite numbers within +-MAX_ABS, or (for training) one number and one empty cell: a
    missing coordinate. `missing` says what such a row becomes: "use" keeps it in `incomplete` (NaN where
    missing), "drop" leaves it out, "error" refuses it at its row, saying `cannot` (why the caller cannot
    use it). The text "nan" is never a missing value: it is an error (so is inf). For training (the
    default) at least MIN_ROWS complete rows are needed, and points that spread in both coordinates;
    points to score need one row, both coordinates each. Anything else is a DataError naming the row."""
    if not training:
        missing, cannot = "error", cannot or "scoring needs both coordinates of every point"
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    delim = max([",", ";", "\t"], key=first.count) if first else ","
    if first and first.count(delim) == 0:
        delim = ","
    rows, incomplete, first_incomplete, dropped = [], [], 0, 0
    header_line = _first_nonblank(lines)
    reader = csv.reader(io.StringIO(text), delimiter=delim)
    lineno = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise DataError(f"Row {reader.line_num} is not readable CSV ({e}).") from None
        lineno = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue  # blank lines carry no point
        if len(row) != 2:
            raise DataError(
                f"Row {lineno} has {len(row)} column{'s' if len(row) != 1 else ''}; "
                "a points file needs exactly 2 (x, y)."
            )
        cells = [c.strip() for c in row]
        vals = [_parse_float(c) for c in cells]
        if None in vals:
            if not rows and not incomplete and all(v is None for v in vals) and lineno == header_line:
                continue  # a header line
            gap = [i for i, c in enumerate(cells) if c == ""]
            other = 1 - gap[0] if gap else None
            if not gap or vals[other] is None:
                bad = next(c for c, v in zip(cells, vals) if v is None and c)
                raise DataError(f"Row {lineno} has '{bad[:40]}', which is not a number.")
            if missing == "error":
                raise DataError(f"Row {lineno} has an empty cell (a missing coordinate); {cannot}.")
            _check_values(lineno, [vals[other]])
            first_incomplete = first_incomplete or lineno
            if missing == "drop":
                dropped += 1
            else:
                vals[gap[0]] = math.nan
                incomplete.append(vals)
        else:
            _check_values(lineno, vals)
            rows.append(vals)
        if len(rows) + len(incomplete) + dropped > MAX_ROWS:
            raise DataError(
                f"The file has more than {MAX_ROWS:,} rows (row {lineno:,} is one too many); "
                f"the limit is {MAX_ROWS:,}."
            )
    inc = np.asarray(incomplete, dtype=np.float64).reshape(-1, 2)
    if not rows and not len(inc) and not dropped:
        raise DataError("The file has no data rows.")
    if not training:
        return PointsDataset(points=np.asarray(rows, dtype=np.float64), label=label)
    if len(rows) < MIN_ROWS:
        part = len(inc) + dropped
        if part:
            raise DataError(
                f"The file has only {len(rows)} complete row{'s' if len(rows) != 1 else ''} (and {part:,} "
                f"with a missing coordinate); at least {MIN_ROWS} complete rows are needed to train and "
                "measure a model."
            )
        raise DataError(
            f"The file has only {len(rows)} data row{'s' if len(rows) != 1 else ''}; "
            f"at least {MIN_ROWS} are needed to train and measure a model."
        )
    points = np.asarray(rows, dtype=np.float64)
    check_spread(points)
    return PointsDataset(
        points=points, label=label, incomplete=inc, first_incomplete_row=first_incomplete if len(inc) else 0
    )


def _check_values(lineno: int, vals: list[float]) -> None:
    """Finite numbers within +-MAX_ABS; the text nan is not a missing value (an empty cell is)."""
    if not all(math.isfinite(v) for v in vals):
        # the text nan is an error, not a missing value (that is an empty cell): a nan in a file is more
        # often a failed computation upstream than a coordinate nobody measured
        raise DataError(f"Row {lineno} has a missing or infinite value (NaN or inf).")
    if max(abs(v) for v in vals) > MAX_ABS:
        raise DataError(f"Row {lineno} has a coordinate beyond +-{MAX_ABS:g}; rescale the points.")


def _first_nonblank(lines: list[str]) -> int:
    for i, ln in enumerate(lines, start=1):
        if ln.strip():
            return i
    return 0


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n:,} bytes"


def _open_file(path: str) -> bytes:
    """The bytes of a regular file of at most MAX_BYTES, or a DataError that says what the path is."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"There is no file at {path}.") from None
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror or e}).") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path} is a directory, not a CSV file.")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path} is not a regular file (it is a device, pipe or socket); give a CSV file.")
    if st.st_size > MAX_BYTES:
        raise DataError(f"The file is {_size(st.st_size)}; the limit is {_size(MAX_BYTES)}.")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)  # never more than the limit, whatever the size said
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror or e}).") from None
    if len(raw) > MAX_BYTES:
        raise DataError(f"The file is over {_size(MAX_BYTES)}; the limit is {_size(MAX_BYTES)}.")
    return raw


def read_text(source) -> tuple[str, str | None]:
    """The text of a path, bytes or a file-like object, and the file's name (None without a path).

    A missing path, a directory, a device, more than 50 MB, non-UTF-8 and binary content are each a
    one-sentence DataError (binary content names its row)."""
    name = None
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        raw = _open_file(path)
        name = os.path.basename(path)
    else:
        raw = source.read(MAX_BYTES + 1) if hasattr(source, "read") else source
        if len(raw) > MAX_BYTES:
            size = (
                f"over {_size(MAX_BYTES)}" if hasattr(source, "read") else _size(len(raw))
            )  # a stream: read to the limit
            raise DataError(f"The file is {size}; the limit is {_size(MAX_BYTES)}.")
    if isinstance(raw, (bytes, bytearray)):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            row = raw[: e.start].count(b"\n") + 1
            raise DataError(f"Row {row} is not text (the file is not UTF-8); save it as CSV.") from None
    else:
        text = str(raw)
    if "\x00" in text:
        row = text[: text.index("\x00")].count("\n") + 1
        raise DataError(f"Row {row} is not text (the file contains binary data); save it as CSV.")
    return text, name


def load_points_csv(
    source, label: str | None = None, training: bool = True, missing: str = "use", cannot: str = ""
) -> PointsDataset:
    """Load points from a path, bytes or a file-like object, with every check in DataError
    (`training=False`: points to score, where one row or identical points are fine; `missing` and
    `cannot`: what rows with an empty cell become, as in parse_points_csv)."""
    text, name = read_text(source)
    return parse_points_csv(
        text, label=label or name or "points", training=training, missing=missing, cannot=cannot
    )


def save_points_csv(path_or_buf, x: np.ndarray, header: str = "x,y") -> None:
    """Write [n, 2] points with a header (x,y)."""
    np.savetxt(path_or_buf, np.asarray(x), delimiter=",", header=header, comments="", fmt="%.8g")


# ---------------------------------------------------------------------------------------------
# Points drawn in the browser: selected cells of a grid, compact enough for a link
# ---------------------------------------------------------------------------------------------

DRAW_GRID = 32  # cells per side
DRAW_BOUNDS = (-4.0, 4.0, -4.0, 4.0)


def cell_centres() -> np.ndarray:
    """Centres [DRAW_GRID**2, 2] of the drawing grid's cells, row-major (y outer, x inner)."""
    x0, x1, _, _ = DRAW_BOUNDS
    h = (x1 - x0) / DRAW_GRID
    c = x0 + h * (np.arange(DRAW_GRID) + 0.5)
    xx, yy = np.meshgrid(c, c)
    return np.stack([xx.ravel(), yy.ravel()], 1)


def cells_of_points(xy: np.ndarray) -> np.ndarray:
    """Indices of the cells that contain the given points."""
    x0, x1, y0, _ = DRAW_BOUNDS
    h = (x1 - x0) / DRAW_GRID
    ij = np.clip(((np.asarray(xy, dtype=float).reshape(-1, 2) - [x0, y0]) / h).astype(int), 0, DRAW_GRID - 1)
    return np.unique(ij[:, 1] * DRAW_GRID + ij[:, 0])


def encode_cells(cells) -> str:
    """Selected cell indices -> a short URL-safe string (a bitmask, base64)."""
    import base64

    mask = np.zeros(DRAW_GRID * DRAW_GRID, dtype=bool)
    mask[np.asarray(list(cells), dtype=int)] = True
    return base64.urlsafe_b64encode(np.packbits(mask).tobytes()).decode().rstrip("=")


def decode_cells(text: str) -> np.ndarray:
    """The inverse of encode_cells; DataError for anything else."""
    import base64
    import binascii

    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DataError("The drawn points in the link are not readable.") from None
    if len(raw) != DRAW_GRID * DRAW_GRID // 8:
        raise DataError("The drawn points in the link are not readable.")
    return np.flatnonzero(np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).astype(bool))


def points_from_cells(cells, per_cell: int = 40, seed: int = 0) -> PointsDataset:
    """Uniform points inside each selected cell: the user's drawing as a dataset."""
    cells = np.asarray(list(cells), dtype=int)
    if len(cells) == 0:
        raise DataError("Nothing is drawn yet: select some cells of the grid.")
    x0, x1, _, _ = DRAW_BOUNDS
    h = (x1 - x0) / DRAW_GRID
    rng = np.random.default_rng(seed)
    centres = cell_centres()[np.repeat(cells, per_cell)]
    pts = centres + rng.uniform(-h / 2, h / 2, centres.shape)
    return PointsDataset(points=pts, label=f"drawn ({len(cells)} cells)")


BRUSH_GRID = 64  # painted cells per side over DRAW_BOUNDS; a drawing is one density level (0-4) per cell
BRUSH_LEVELS = 4
BRUSH_PER_LEVEL = 3  # points per cell per density level (level 4: 12 points in a cell of 1/64 unit area)


def paint_strokes(strokes, levels: np.ndarray | None = None) -> np.ndarray:
    """Rasterise brush strokes onto the painting grid (what pages/brush.js does while the mouse moves).

    Each stroke is (xy [k, 2] in data coordinates, radius in data units, level 0-4; 0 erases). A cell is
    painted when its centre lies within `radius` of the polyline. Returns uint8 levels [BRUSH_GRID**2].
    """
    out = np.zeros(BRUSH_GRID * BRUSH_GRID, np.uint8) if levels is None else np.array(levels, np.uint8)
    x0, x1, _, _ = DRAW_BOUNDS
    h = (x1 - x0) / BRUSH_GRID
    c = x0 + h * (np.arange(BRUSH_GRID) + 0.5)
    centres = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)  # row-major: y outer, x inner
    for xy, radius, level in strokes:
        xy = np.asarray(xy, float).reshape(-1, 2)
        a, b = xy[:-1] if len(xy) > 1 else xy, xy[1:] if len(xy) > 1 else xy
        for p, q in zip(a, b):  # distance from every centre to the segment p-q
            d = q - p
            t = np.clip(((centres - p) @ d) / max(d @ d, 1e-12), 0.0, 1.0)
            near = np.linalg.norm(centres - (p + t[:, None] * d), axis=1) <= radius
            out[near] = int(level)
    return out


def points_from_paint(levels, seed: int = 0, jitter: float = 0.35) -> PointsDataset:
    """A painting's points: BRUSH_PER_LEVEL * level uniform points in each painted cell, plus a light
    Gaussian jitter (std `jitter` cell widths) so the grid does not show. Seeded: same painting, same points."""
    levels = np.asarray(levels, dtype=int).ravel()
    if (
        levels.size != BRUSH_GRID * BRUSH_GRID
        or levels.min(initial=0) < 0
        or levels.max(initial=0) > BRUSH_LEVELS
    ):
        raise DataError("The painting is not readable.")
    counts = levels * BRUSH_PER_LEVEL
    if counts.sum() == 0:
        raise DataError("Nothing is drawn yet: paint on the canvas.")
    x0, x1, y0, _ = DRAW_BOUNDS
    h = (x1 - x0) / BRUSH_GRID
    cells = np.repeat(np.arange(levels.size), counts)
    corner = np.stack([x0 + h * (cells % BRUSH_GRID), y0 + h * (cells // BRUSH_GRID)], 1)
    rng = np.random.default_rng(seed)
    pts = corner + rng.uniform(0, h, corner.shape) + rng.normal(0, jitter * h, corner.shape)
    return PointsDataset(points=pts, label=f"painted ({int((levels > 0).sum())} cells)")


def encode_paint(levels) -> str:
    """A painting -> a short URL-safe string: "p" + base64url(deflate(one byte per cell)). Strokes are
    long runs of equal levels, so deflate makes a typical drawing a few hundred characters."""
    import base64
    import zlib

    raw = np.asarray(levels, dtype=np.uint8).ravel()
    if raw.size != BRUSH_GRID * BRUSH_GRID or raw.max(initial=0) > BRUSH_LEVELS:
        raise DataError("The painting is not readable.")
    if not raw.any():
        return ""
    return "p" + base64.urlsafe_b64encode(zlib.compress(raw.tobytes(), 9)).decode().rstrip("=")


def decode_paint(text: str) -> np.ndarray:
    """The inverse of encode_paint (uint8 levels [BRUSH_GRID**2]); "" is an empty painting. An old link's
    grid cells (encode_cells, no "p" in front) become the same area painted at level 4 (40 points a
    cell then, 48 now). DataError for anything else."""
    import base64
    import binascii
    import zlib

    if not text:
        return np.zeros(BRUSH_GRID * BRUSH_GRID, np.uint8)
    if not text.startswith("p"):
        cells = decode_cells(text)
        k = BRUSH_GRID // DRAW_GRID
        old = np.zeros(DRAW_GRID * DRAW_GRID, np.uint8)
        old[cells] = BRUSH_LEVELS
        return np.kron(old.reshape(DRAW_GRID, DRAW_GRID), np.ones((k, k), np.uint8)).ravel()
    try:
        body = text[1:]
        d = zlib.decompressobj()
        raw = d.decompress(
            base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), BRUSH_GRID * BRUSH_GRID + 1
        )
    except (binascii.Error, ValueError, zlib.error):
        raise DataError("The drawing in the link is not readable.") from None
    levels = np.frombuffer(raw, dtype=np.uint8)
    if levels.size != BRUSH_GRID * BRUSH_GRID or levels.max(initial=0) > BRUSH_LEVELS:
        raise DataError("The drawing in the link is not readable.")
    return levels.copy()


def with_params(ds: Dataset, **params) -> Dataset:
    return replace(ds, **params)


# ---------------------------------------------------------------------------------------------
# Real data occupy a negligible volume: the share of the box that holds 95 % of the mass, in d dimensions
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeShare:
    """How little of its box a density fills.

    dims   [m] dimensions d (even): the product of d/2 independent copies of the 2D density
    share  [m] volume of the smallest region holding `mass` of the probability (the highest-density
           region {x: p(x) >= t}), as a share of the box's volume (the 2D box to the power d/2)
    mass   the probability the region holds (0.95)
    box    the 2D box (xmin, xmax, ymin, ymax)
    method "grid" (the density on a grid of cells) or "samples" (draws and their exact log-density)
    """

    dims: np.ndarray
    share: np.ndarray
    mass: float
    box: tuple[float, float, float, float]
    method: str


def _hdr_share(
    log_p: np.ndarray, w_mass: np.ndarray, w_vol: np.ndarray, dims, mass: float, bin_width: float, span: float
) -> np.ndarray:
    """The share of the box in the `mass` highest-density region of the product of d/2 copies, for each d.

    The log-density of the product is a sum S of d/2 independent copies of L = log p(x). L is binned
    downwards from its maximum M (bin b holds M - L in [b w, (b + 1) w)), with two weights per bin: its
    probability (w_mass) and its share of the box (w_vol). Sums of independent copies have the bins'
    convolutions as histograms, for the mass and the volume alike; the region is then the top bins of S
    down to where the mass reaches `mass`, the last bin taken in part (in proportion, exact for ties).
    Bins beyond `span` nats below M never reach the region (checked) and are truncated."""
    # the region of k copies reaches about k (M - E[L]) + 2 sqrt(k) sd(L) below the top: make room for it
    mu = np.average(log_p, weights=w_mass)
    sd = np.sqrt(np.average((log_p - mu) ** 2, weights=w_mass))
    k_max = max(int(d) // 2 for d in dims)
    span = max(span, 1.5 * (k_max * (log_p.max() - mu) + 4 * np.sqrt(k_max) * sd) + 10)
    bin_width = max(bin_width, span / 20_000)  # at most 20,000 bins: the convolutions stay quick
    nb = int(np.ceil(span / bin_width))
    b = np.minimum(((log_p.max() - log_p) / bin_width).astype(np.int64), nb - 1)
    h_mass = np.bincount(b, weights=w_mass, minlength=nb)[:nb]
    h_vol = np.bincount(b, weights=w_vol, minlength=nb)[:nb]
    h_mass, h_vol = h_mass / h_mass.sum(), h_vol / h_vol.sum() * min(1.0, h_vol.sum())

    def power(h: np.ndarray, k: int) -> np.ndarray:  # the k-fold convolution, by squaring, truncated at nb
        out, base = None, h
        while k:
            if k & 1:
                out = base if out is None else np.convolve(out, base)[:nb]
            k >>= 1
            if k:
                base = np.convolve(base, base)[:nb]
        return out

    shares = []
    for d in dims:
        k = int(d) // 2
        m, v = power(h_mass, k), power(h_vol, k)
        cm = np.cumsum(m)
        t = int(np.searchsorted(cm, mass))
        if t >= nb - k:
            raise ValueError(
                f"the {mass:.0%} region reaches {span} nats below the top in d = {d}; widen span."
            )
        below = cm[t - 1] if t else 0.0
        shares.append((v[:t].sum() + (mass - below) / m[t] * v[t]) if m[t] > 0 else v[:t].sum())
    return np.asarray(shares)


def volume_share(
    log_prob: Callable[[np.ndarray], np.ndarray],
    box: tuple[float, float, float, float],
    dims=(2, 4, 8, 16, 32),
    mass: float = 0.95,
    grid: int = 512,
    samples: np.ndarray | None = None,
    bin_width: float = 0.02,
    span: float = 120.0,
) -> VolumeShare:
    """The share of `box` (to the power d/2) that holds `mass` of a 2D density's d/2-fold product.

    Without `samples`: log p on the centres of grid x grid cells, each cell's mass p * area (normalised to
    the box's mass) and volume 1 / grid^2. With samples x_i ~ p: each has mass 1/n and, by importance
    weighting (vol(A) = E_p[1_A(X) / p(X)]), volume 1 / (n p(x_i) |box|), accurate where the samples are,
    which is where the region is: it scales to shares far below what points drawn uniformly in the box
    could find (1e-20 at d = 32)."""
    x0, x1, y0, y1 = box
    area = (x1 - x0) * (y1 - y0)
    if samples is None:
        gx = x0 + (np.arange(grid) + 0.5) * (x1 - x0) / grid
        gy = y0 + (np.arange(grid) + 0.5) * (y1 - y0) / grid
        pts = np.stack(np.meshgrid(gx, gy), -1).reshape(-1, 2)
        lp = np.asarray(log_prob(pts), dtype=np.float64)
        w_mass = np.exp(lp - lp.max())
        w_vol = np.full(len(lp), 1.0)
        method = "grid"
    else:
        inside = (samples[:, 0] >= x0) & (samples[:, 0] <= x1) & (samples[:, 1] >= y0) & (samples[:, 1] <= y1)
        lp = np.asarray(log_prob(samples[inside]), dtype=np.float64)
        w_mass = np.full(len(lp), 1.0)
        # the share of the box each sample stands for; their sum estimates the box's share with p > 0
        w_vol = np.exp(-(lp - lp.max())) * np.exp(-lp.max()) / (len(samples) * area)
        method = "samples"
    ok = np.isfinite(lp)  # p = 0: no mass, and (on the grid) volume that no region reaches
    lp = np.where(ok, lp, lp[ok].max() - 2 * span)
    w_mass, w_vol = np.where(ok, w_mass, 0.0), np.where(ok | (method == "grid"), w_vol, 0.0)
    share = _hdr_share(lp, w_mass, w_vol, dims, mass, bin_width, span)
    return VolumeShare(np.asarray(dims), share, mass, tuple(box), method)


def dataset_volume_share(
    ds: Dataset, dims=(2, 4, 8, 16, 32), mass: float = 0.95, n: int = 20_000, seed: int = 0
):
    """volume_share of a built-in density over its plot window, from n of its samples and their exact
    log-density (the grid needs a million cells for 8 Gaussians of std 0.02, and curves' densities cost
    ~60 us a point)."""
    return volume_share(ds.log_prob, ds.bounds(), dims, mass, samples=ds.sample(n, seed))
