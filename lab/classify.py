"""Generative vs discriminative classifiers on labelled 2D data: Bayes' rule over class densities vs P(y|x) fitted directly."""

from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from lab.base import GenerativeModel
from lab.data import (
    MAX_ROWS,
    CurveDataset,
    DataError,
    MixtureDataset,
    _parse_float,
    make_dataset,
    points_from_array,
    read_text,
)

MAX_CLASSES = 8

# ---------------------------------------------------------------------------------------------
# Labelled data: the built-in datasets with the piece / component that generated each point
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LabelledData:
    """Points x [n, 2] with integer labels y [n] in 0..K-1 and a name per class."""

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    title: str = ""
    bounds: tuple[float, float, float, float] | None = None
    source: object = field(default=None, repr=False)  # the lab.data Dataset it came from, if any

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def of_class(self, k: int) -> np.ndarray:
        return self.x[self.y == k]

    def priors(self) -> np.ndarray:
        """P(y) as the label frequencies."""
        return np.bincount(self.y, minlength=self.n_classes) / len(self.y)

    def subset(self, idx: np.ndarray) -> "LabelledData":
        return LabelledData(self.x[idx], self.y[idx], self.classes, self.title, self.bounds, self.source)

    def split(self, test_fraction: float = 0.5, seed: int = 0) -> tuple["LabelledData", "LabelledData"]:
        """A seeded (train, test) split."""
        perm = np.random.default_rng(seed).permutation(len(self.y))
        n_test = int(round(len(perm) * test_fraction))
        return self.subset(np.sort(perm[n_test:])), self.subset(np.sort(perm[:n_test]))

    def scarce(self, per_class: int, seed: int = 0) -> "LabelledData":
        """Keep at most `per_class` labelled points of each class (the scarce-label setting)."""
        rng = np.random.default_rng(seed)
        keep = [rng.permutation(np.flatnonzero(self.y == k))[:per_class] for k in range(self.n_classes)]
        return self.subset(np.sort(np.concatenate(keep)))

    def bounds_or_fit(self) -> tuple[float, float, float, float]:
        if self.bounds is not None:
            return self.bounds
        lo, hi = self.x.min(0), self.x.max(0)
        pad = 0.15 * np.maximum(hi - lo, 1e-3)
        return (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))


LABELLED = {
    "moons": "which moon (upper / lower arc)",
    "circles": "which circle (outer / inner)",
    "8gaussians": "mixture component, k mod classes",
    "25gaussians": "mixture component, k mod classes (a checkerboard for 2)",
}


def labelled_dataset(name: str, n: int = 2000, seed: int = 0, n_classes: int = 2, **params) -> LabelledData:
    """Sample n labelled points of a built-in dataset (see LABELLED), reproducibly for a seed.

    Curves (moons, circles): the label is the piece (arc, circle) the point was drawn from.
    Mixtures (8gaussians, 25gaussians): the label of component k is k mod n_classes.
    """
    if name not in LABELLED:
        raise DataError(f"Dataset '{name}' has no labels; choose one of {', '.join(LABELLED)}.")
    ds = make_dataset(name, **params)
    rng = np.random.default_rng(seed)
    if isinstance(ds, CurveDataset):
        x, which = ds.sample_pieces(n, rng)  # the curve piece each point came from is its label
        x = x * ds.scale
        names = ["upper moon", "lower moon"] if name == "moons" else ["outer circle", "inner circle"]
        return LabelledData(x, which.astype(int), names, ds.title, ds.bounds(), ds)
    assert isinstance(ds, MixtureDataset)
    means = ds._means()
    if not 2 <= n_classes <= min(len(means), MAX_CLASSES):
        raise DataError(
            f"{ds.title} can be split into 2 to {min(len(means), MAX_CLASSES)} classes, not {n_classes}."
        )
    comp = rng.integers(0, len(means), n)
    x = (means[comp] + ds.std * rng.standard_normal((n, 2))) * ds.scale
    return LabelledData(
        x, comp % n_classes, [f"class {k}" for k in range(n_classes)], ds.title, ds.bounds(), ds
    )


def true_posterior(data: LabelledData, x: np.ndarray) -> np.ndarray | None:
    """The Bayes-optimal P(y|x) [m, K] for the mixture datasets (exact), else None."""
    ds = data.source
    if not isinstance(ds, MixtureDataset):
        return None
    means, s = ds._means() * ds.scale, ds.std * ds.scale
    d2 = ((np.asarray(x)[:, None, :] - means[None]) ** 2).sum(-1)  # [m, components]
    logc = -0.5 * d2 / s**2
    lab = np.arange(len(means)) % data.n_classes
    per = np.stack([logsumexp(logc[:, lab == k], axis=1) for k in range(data.n_classes)], 1)
    return np.exp(per - logsumexp(per, axis=1, keepdims=True))


# ---------------------------------------------------------------------------------------------
# User CSV: x, y, label
# ---------------------------------------------------------------------------------------------


def parse_labelled_csv(text: str, title: str = "Your points") -> LabelledData:
    """Parse CSV text with three columns x, y, label (comma, semicolon or tab; header optional).

    Labels may be numbers or words; classes are ordered by first appearance.
    """
    lines = text.splitlines()
    first = next((ln for ln in lines if ln.strip()), "")
    delim = max([",", ";", "\t"], key=first.count) if first else ","
    if first and first.count(delim) == 0:
        delim = ","
    xs, labels = [], []
    for lineno, row in enumerate(csv.reader(io.StringIO(text), delimiter=delim), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 3:
            raise DataError(
                f"Row {lineno} has {len(row)} column{'s' if len(row) != 1 else ''}; a labelled file needs exactly 3 (x, y, label)."
            )
        vals = [_parse_float(c.strip()) for c in row[:2]]
        if None in vals:
            if not xs and all(v is None for v in vals):
                continue  # a header line
            bad = row[vals.index(None)].strip()
            raise DataError(f"Row {lineno} has '{bad[:40]}', which is not a number.")
        if not all(math.isfinite(v) for v in vals):
            raise DataError(f"Row {lineno} has a missing or infinite value (NaN or inf).")
        lab = row[2].strip()
        if not lab:
            raise DataError(f"Row {lineno} has no label in its third column.")
        xs.append(vals)
        labels.append(lab)
        if len(xs) > MAX_ROWS:
            raise DataError(f"The file has more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}.")
    if not xs:
        raise DataError("The file has no data rows.")
    x = points_from_array(xs).points  # lab.data's checks: shape, count, finiteness
    classes = list(dict.fromkeys(labels))
    if len(classes) < 2:
        raise DataError(
            f"All rows have the label '{classes[0][:40]}'; a classifier needs at least 2 classes."
        )
    if len(classes) > MAX_CLASSES:
        raise DataError(f"The file has {len(classes)} different labels; the limit is {MAX_CLASSES} classes.")
    y = np.array([classes.index(lab) for lab in labels])
    counts = np.bincount(y, minlength=len(classes))
    if counts.min() < 2:
        raise DataError(
            f"The class '{classes[int(counts.argmin())][:40]}' has only 1 point; every class needs at least 2."
        )
    return LabelledData(x, y, classes, title)


def load_labelled_csv(source, title: str | None = None) -> LabelledData:
    """Load x, y, label rows from a path, bytes or a file-like object; every problem is a DataError."""
    text, name = read_text(source)
    return parse_labelled_csv(text, title or name or "Your points")


# ---------------------------------------------------------------------------------------------
# Discriminative: P(y|x) fitted directly
# ---------------------------------------------------------------------------------------------

DISCRIMINATIVE = {"logistic": "Logistic regression", "mlp": "MLP (2 x 64, ReLU)"}


class DiscriminativeClassifier:
    """P(y|x) = softmax(f(x)): f linear (logistic regression) or a small MLP, fitted by maximum
    conditional likelihood (cross-entropy). It never models p(x), so it cannot integrate out a
    missing coordinate: the usual fix, used here, is to impute the training mean (Ng & Jordan 2001).
    """

    def __init__(self, kind: str = "logistic", seed: int = 0):
        if kind not in DISCRIMINATIVE:
            raise ValueError(
                f"Unknown discriminative classifier '{kind}'; choose one of {', '.join(DISCRIMINATIVE)}."
            )
        self.kind, self.seed = kind, seed
        self.title = DISCRIMINATIVE[kind]

    def fit(self, data: LabelledData) -> "DiscriminativeClassifier":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.n_classes = data.n_classes
        self.mean = data.x.mean(0)
        if self.kind == "logistic":
            clf = LogisticRegression(C=1.0, max_iter=1000)
        else:
            clf = MLPClassifier(
                (64, 64), alpha=1e-3, max_iter=800, learning_rate_init=3e-3, random_state=self.seed
            )
        self.clf = make_pipeline(StandardScaler(), clf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.clf.fit(data.x, data.y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(y|x) [m, K] (classes missing from the training labels get probability 0)."""
        p = self.clf.predict_proba(np.asarray(x, dtype=np.float64))
        out = np.zeros((len(p), self.n_classes))
        out[:, self.clf.classes_] = p
        return out

    def predict_proba_missing(self, x: np.ndarray, missing: int) -> np.ndarray:
        """P(y|x) with coordinate `missing` unknown: the training mean stands in for it."""
        x = np.array(x, dtype=np.float64, copy=True)
        x[:, missing] = self.mean[missing]
        return self.predict_proba(x)


# ---------------------------------------------------------------------------------------------
# Generative: p(x|y) per class from any density family of the lab, P(y), Bayes' rule
# ---------------------------------------------------------------------------------------------


def marginal_log_prob(
    model: GenerativeModel,
    v: np.ndarray,
    keep: int,
    lo: float,
    hi: float,
    n_grid: int = 400,
    numeric: bool = False,
) -> np.ndarray:
    """log p(x_keep = v) [m] with the other coordinate integrated out.

    A Gaussian mixture marginalises exactly (drop the dimension: sum_k pi_k N(v; mu_k[keep],
    Sigma_k[keep, keep])). Any other density is integrated numerically on a grid of the missing
    coordinate over [lo, hi]: log sum_j p(x_keep = v, x_other = g_j) + log dg (midpoint rule).
    `numeric` forces the grid even for a GMM (the tests compare the two).
    """
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if model.key == "gmm" and not numeric and "means" in model.views():
        vw = model.views()
        mu, var = vw["means"][:, keep], vw["covariances"][:, keep, keep]
        lp = -0.5 * (v[:, None] - mu[None]) ** 2 / var[None] - 0.5 * np.log(2 * math.pi * var[None])
        return logsumexp(lp + np.log(vw["weights"])[None], axis=1)
    if not model.has_log_prob:
        raise ValueError(f"{model.title} has no density, so it cannot be a class-conditional p(x|y).")
    edges = np.linspace(lo, hi, n_grid + 1)
    g = 0.5 * (edges[1:] + edges[:-1])
    pts = np.empty((len(v), n_grid, 2))
    pts[..., keep] = v[:, None]
    pts[..., 1 - keep] = g[None, :]
    lp = model.log_prob(pts.reshape(-1, 2)).double().numpy().reshape(len(v), n_grid)
    return logsumexp(lp, axis=1) + math.log((hi - lo) / n_grid)


class GenerativeClassifier:
    """P(y|x) = p(x|y) P(y) / sum_y' p(x|y') P(y') (Bayes' rule), one density model per class.

    The class-conditionals can be any lab family with a density (exact or a bound); P(y) is the
    label frequency. Because it models x, a missing coordinate is integrated out:
    P(y|x_1) is proportional to P(y) * integral p(x_1, x_2|y) dx_2.
    """

    def __init__(
        self, models: list, priors: np.ndarray, missing_range: list[tuple[float, float]] | None = None
    ):
        bad = [m.title for m in models if not m.has_log_prob]
        if bad:
            raise ValueError(
                f"{bad[0]} has no density, so it cannot be a class-conditional p(x|y); choose a family with log_prob."
            )
        self.models = list(models)
        self.log_priors = np.log(np.clip(np.asarray(priors, dtype=np.float64), 1e-300, None))
        self.missing_range = missing_range  # per coordinate, the span integrated over when it is missing
        self.title = f"Generative ({models[0].title})" if models else "Generative"

    def class_log_probs(self, x: np.ndarray) -> np.ndarray:
        """log p(x|y) [m, K]."""
        return np.stack([_log_prob(m, np.asarray(x)) for m in self.models], 1)

    def _posterior(self, logp: np.ndarray) -> np.ndarray:
        joint = logp + self.log_priors[None]
        joint = np.where(np.isfinite(joint), joint, -1e300)
        return np.exp(joint - logsumexp(joint, axis=1, keepdims=True))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self._posterior(self.class_log_probs(x))

    def predict_proba_missing(self, x: np.ndarray, missing: int) -> np.ndarray:
        """P(y | x_other) with coordinate `missing` integrated out of every p(x|y)."""
        keep = 1 - missing
        lo, hi = self.missing_range[missing] if self.missing_range else (-10.0, 10.0)
        x = np.asarray(x, dtype=np.float64)
        logp = np.stack(
            [
                m.marginal_log_prob(x[:, keep], keep, lo, hi)
                if hasattr(m, "marginal_log_prob")
                else marginal_log_prob(m, x[:, keep], keep, lo, hi)
                for m in self.models
            ],
            1,
        )
        return self._posterior(logp)


def _log_prob(model, x: np.ndarray) -> np.ndarray:
    """log p(x) [m] as numpy, from a GenerativeModel or a run in a worker (lab.live.session.RunDensity)."""
    lp = model.log_prob(x)
    return lp.double().numpy() if hasattr(lp, "double") else np.asarray(lp, dtype=np.float64)


def missing_range(data: LabelledData, pad: float = 0.5) -> list[tuple[float, float]]:
    """Span of each coordinate to integrate over: the data range widened by `pad` of its width."""
    lo, hi = data.x.min(0), data.x.max(0)
    w = hi - lo
    return [(float(lo[d] - pad * w[d]), float(hi[d] + pad * w[d])) for d in range(2)]


def fit_generative(
    data: LabelledData,
    key: str = "gmm",
    config=None,
    seed: int = 0,
    max_seconds: float | None = 3.0,
    max_steps: int | None = None,
) -> GenerativeClassifier:
    """Train one `key` model per class with lab.runner.fit (in this thread) and combine them."""
    from lab.base import get_model_class
    from lab.run import RunSpec, fit

    if not get_model_class(key).has_log_prob:
        raise ValueError(
            f"{get_model_class(key).title} has no density, so it cannot be a class-conditional p(x|y)."
        )
    models = []
    for k in range(data.n_classes):
        pts = points_from_array(data.of_class(k), label=data.classes[k])
        models.append(
            fit(RunSpec(key, pts, config, seed=seed + k, max_seconds=max_seconds, max_steps=max_steps)).model
        )
    return GenerativeClassifier(models, data.priors(), missing_range(data))


# ---------------------------------------------------------------------------------------------
# Pictures and scores as plain arrays
# ---------------------------------------------------------------------------------------------


def accuracy(proba: np.ndarray, y: np.ndarray) -> float:
    return float((np.asarray(proba).argmax(1) == np.asarray(y)).mean())


def proba_grid(clf, bounds, size: int = 80) -> dict:
    """P(y|x) on a size x size grid: {"x", "y", "proba" [size, size, K]}."""
    x0, x1, y0, y1 = bounds
    gx, gy = np.linspace(x0, x1, size), np.linspace(y0, y1, size)
    xx, yy = np.meshgrid(gx, gy)
    p = clf.predict_proba(np.stack([xx.ravel(), yy.ravel()], 1))
    return {"x": gx, "y": gy, "proba": p.reshape(size, size, -1)}


def missing_curve(clf, data: LabelledData, missing: int, lo: float, hi: float, size: int = 200) -> dict:
    """P(y | the observed coordinate) along a line when `missing` is unknown: {"v", "proba" [size, K]}."""
    v = np.linspace(lo, hi, size)
    x = np.zeros((size, 2))
    x[:, 1 - missing] = v
    return {"v": v, "proba": clf.predict_proba_missing(x, missing)}


def label_curve(
    train: LabelledData,
    test: LabelledData,
    sizes: list[int],
    key: str = "gmm",
    seed: int = 0,
    max_seconds: float = 2.0,
    config=None,
) -> dict:
    """Test accuracy of each classifier trained on `n` labels per class, for n in sizes.

    Generative classifiers need fewer labels to reach their (higher) asymptotic error, and
    discriminative ones overtake them with many labels (Ng & Jordan 2001): measured here.
    """
    out: dict[str, list[float]] = {"sizes": list(sizes), "logistic": [], "mlp": [], "generative": []}
    for n in sizes:
        sub = train.scarce(n, seed)
        for kind in ("logistic", "mlp"):
            out[kind].append(
                accuracy(DiscriminativeClassifier(kind, seed).fit(sub).predict_proba(test.x), test.y)
            )
        gen = fit_generative(sub, key, config, seed=seed, max_seconds=max_seconds)
        out["generative"].append(accuracy(gen.predict_proba(test.x), test.y))
    return out


def density_families() -> dict[str, str]:
    """key -> title of every lab family that has a density (it can be a class-conditional p(x|y))."""
    from lab.base import REGISTRY, get_model_class

    out = {}
    for k in REGISTRY:
        try:
            cls = get_model_class(k)
        except ImportError:
            continue
        if cls.has_log_prob:
            out[k] = cls.title + (" (bound)" if cls.density_kind == "bound" else "")
    return out


def class_log_prob_grid(gen: GenerativeClassifier, bounds, size: int = 60) -> dict:
    """log p(x|y) on a grid: {"x", "y", "log_p" [size, size, K]}."""
    x0, x1, y0, y1 = bounds
    gx, gy = np.linspace(x0, x1, size), np.linspace(y0, y1, size)
    xx, yy = np.meshgrid(gx, gy)
    return {
        "x": gx,
        "y": gy,
        "log_p": gen.class_log_probs(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(size, size, -1),
    }


def scores(classifiers: dict, test: LabelledData, missing: int | None = None) -> dict[str, float]:
    """name -> test accuracy, with coordinate `missing` hidden when given."""
    if missing is None:
        return {k: accuracy(c.predict_proba(test.x), test.y) for k, c in classifiers.items()}
    return {k: accuracy(c.predict_proba_missing(test.x, missing), test.y) for k, c in classifiers.items()}
