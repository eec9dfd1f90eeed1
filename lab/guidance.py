"""Classifier-free guidance (Ho & Salimans 2022) for the class-conditional fm and ddpm: labels, label dropout, measures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from lab.base import option
from lab.data import DataError, PointsDataset, points_from_array
from lab.metrics import energy_distance, mode_coverage

if TYPE_CHECKING:
    from lab.data import Dataset

# The Classifiers page's limit (lab.classify.MAX_CLASSES); label MAX_CLASSES itself is the null label.
MAX_CLASSES = 8
NULL_LABEL = MAX_CLASSES
GUIDANCE_WEIGHTS = (0.0, 1.0, 2.0, 4.0, 8.0)
NO_LABELS = (
    "conditional=true needs labelled data: moons, circles, 8gaussians, 25gaussians, or a CSV with a label "
    "column (x, y, label)"
)


def conditional_option():
    return option(
        False,
        "class-conditional on the data's labels (moons, circles, 8gaussians, 25gaussians or a CSV with a "
        "label column), with label dropout, for classifier-free guidance",
    )


def p_uncond_option():
    return option(
        0.2,
        "label dropout p_uncond: share of training points given the null label (the unconditional model "
        "guidance needs; Ho & Salimans use 0.1-0.2)",
        min=0.0,
        max=0.9,
    )


def guidance_option():
    return option(
        0.0,
        "classifier-free guidance weight w: (1 + w) f(x, c) - w f(x, null); 0 is the conditional model",
        min=0.0,
        max=20.0,
        live=True,
    )


# ---------------------------------------------------------------------------------------------
# Labelled data for a run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LabelledPoints(PointsDataset):
    """A user's points with a label each (a CSV with x, y, label): the points train like any PointsDataset,
    the labels reach a class-conditional model through `sample_labelled`."""

    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    classes: tuple[str, ...] = ()

    def params(self):
        return {**super().params(), "classes": len(self.classes)}


def labelled_points(x: np.ndarray, y: np.ndarray, classes, label: str = "points") -> LabelledPoints:
    """Validated labelled points: x [n, 2] as lab.data checks them, y [n] integers in 0..len(classes)-1."""
    pts = points_from_array(x, label=label)
    y = np.asarray(y)
    if y.shape != (len(pts.points),) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"There must be one whole-number label per point ({len(pts.points)}).")
    if not 1 <= len(classes) <= MAX_CLASSES or y.min() < 0 or y.max() >= len(classes):
        raise DataError(f"Labels must name 1 to {MAX_CLASSES} classes.")
    return LabelledPoints(points=pts.points, label=label, labels=y.astype(np.int64), classes=tuple(classes))


def load_labelled_points(source, label: str | None = None) -> LabelledPoints:
    """A CSV of x, y, label rows (lab.classify's parser: words or numbers as labels, at most 8 classes)."""
    from lab.classify import load_labelled_csv

    d = load_labelled_csv(source, title=label)
    return labelled_points(d.x, d.y, d.classes, label=d.title)


def sample_labelled(ds: Dataset, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(points [n, 2], labels [n], class names) for a run on `ds`; the points are those ds.sample(n, seed) gives.

    LabelledPoints: the same seeded shuffle as PointsDataset.sample. A built-in with labels (moons, circles,
    8gaussians, 25gaussians): lab.classify.labelled_dataset draws from the same random stream as the
    dataset's own sampler (which moon, which component, 2 classes for mixtures: component k is class k mod 2).
    """
    if isinstance(ds, LabelledPoints):
        rng = np.random.default_rng(seed)
        idx = rng.permutation(n) if n == len(ds.points) else rng.integers(0, len(ds.points), n)
        return ds.points[idx].copy(), ds.labels[idx].copy(), list(ds.classes)
    from lab.classify import LABELLED, labelled_dataset

    if isinstance(ds, PointsDataset) or ds.name not in LABELLED:
        what = "your points have" if isinstance(ds, PointsDataset) else f"'{ds.name}' has"
        raise DataError(f"{NO_LABELS}; {what} no labels.")
    d = labelled_dataset(ds.name, n, seed, **ds.params())
    return d.x, d.y, list(d.classes)


def class_names(ds: Dataset) -> list[str] | None:
    """The class names of a labelled dataset, or None when it has no labels."""
    try:
        return sample_labelled(ds, 8, 0)[2]
    except DataError:
        return None


def true_class_samples(ds: Dataset, n: int, seed: int) -> list[np.ndarray]:
    """Fresh true samples of each class [n_k, 2] (about n in all), the references of the measurements."""
    x, y, classes = sample_labelled(ds, n, seed)
    return [x[y == k] for k in range(len(classes))]


def class_modes(ds: Dataset, n_classes: int) -> list[np.ndarray] | None:
    """For a mixture dataset, the modes of each class (component k belongs to class k mod n_classes)."""
    modes = ds.modes
    if modes is None or isinstance(ds, PointsDataset):
        return None
    return [modes[np.arange(len(modes)) % n_classes == k] for k in range(n_classes)]


# ---------------------------------------------------------------------------------------------
# Training and sampling pieces shared by the conditional fm and ddpm
# ---------------------------------------------------------------------------------------------


def drop_labels(y: torch.Tensor, p_uncond: float, generator: torch.Generator) -> torch.Tensor:
    """y with each label replaced by the null label with probability p_uncond (Ho & Salimans 2022, Alg. 1):
    one network learns both the conditional model (label c) and the unconditional one (null label)."""
    drop = torch.rand(y.shape, generator=generator, device=y.device) < p_uncond
    return torch.where(drop, torch.full_like(y, NULL_LABEL), y)


def guide(cond: torch.Tensor, uncond: torch.Tensor, w: float) -> torch.Tensor:
    """Classifier-free guidance: (1 + w) f(x, c) - w f(x, null) (Ho & Salimans 2022, eq. 6).

    With f = eps this is eps - (1 + w) sigma grad log p(c | x) implicitly: the sampler follows
    p(x | c) p(c | x)^w, sharper for w > 0. The same combination of velocities for flow matching."""
    return (1 + w) * cond - w * uncond


def guided_call(net, x: torch.Tensor, c: torch.Tensor, labels: torch.Tensor, w: float) -> torch.Tensor:
    """guide(net(x, c, labels), net(x, c, null), w) with both halves in one batched call; w = 0 is the
    conditional network alone (no second half computed)."""
    if w == 0:
        return net(x, c, labels)
    both = net(
        torch.cat([x, x]),
        c if c.dim() == 0 else torch.cat([c, c]),
        torch.cat([labels, torch.full_like(labels, NULL_LABEL)]),
    )
    cond, uncond = both.chunk(2)
    return guide(cond, uncond, w)


class ClassConditional:
    """What a class-conditional family (config fields conditional, p_uncond, guidance) shares.

    The labels of the training points come in by `set_labels` (lab.run.Run calls it with the labels of
    `sample_labelled`); the class frequencies are a buffer of the network, so a saved model samples
    its classes in proportion without its data.
    """

    def _build_labels(self) -> None:
        self.train_y: torch.Tensor | None = None
        if self.config.conditional:
            self.net.register_buffer("class_counts", torch.zeros(MAX_CLASSES))

    def set_labels(self, y) -> None:
        """The label [n] of every training point (in the order of train_z), integers 0..MAX_CLASSES-1."""
        y = torch.as_tensor(np.asarray(y), dtype=torch.long, device=self.device)
        if y.shape != (len(self.train_z),) or y.min() < 0 or y.max() >= MAX_CLASSES:
            raise ValueError(f"set_labels needs {len(self.train_z)} labels in 0..{MAX_CLASSES - 1}.")
        self.train_y = y
        self.net.class_counts.copy_(torch.bincount(y, minlength=MAX_CLASSES).float())

    @property
    def n_classes(self) -> int:
        """Classes seen in training (0 for an unconditional model)."""
        if not self.config.conditional:
            return 0
        return int((self.net.class_counts > 0).nonzero().max()) + 1 if self.net.class_counts.any() else 0

    def labelled_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x [n, 2], labels [n]) drawn from the training set, labels dropped to null with prob. p_uncond.

        The runner's batch carries no labels, so a conditional model draws its own batch of the same size."""
        if self.train_y is None:
            from lab.base import ConfigError

            raise ConfigError(f"{NO_LABELS}.")
        idx = torch.randint(0, len(self.train_z), (n,), generator=self.gen, device=self.device)
        return self.train_z[idx], drop_labels(self.train_y[idx], self.config.p_uncond, self.gen)

    def draw_labels(self, n: int, generator: torch.Generator) -> torch.Tensor | None:
        """n labels from the training frequencies (None for an unconditional model: no random draw)."""
        if not self.config.conditional:
            return None
        counts = self.net.class_counts
        p = counts if counts.any() else torch.ones_like(counts)
        return torch.multinomial(p, n, replacement=True, generator=generator)

    def sample_class(self, n: int, label: int, guidance: float | None = None, generator=None) -> torch.Tensor:
        """n samples [n, 2] (data coordinates) of class `label` at guidance weight w (the config's when None)."""
        if not self.config.conditional:
            raise ValueError("sample_class needs a model trained with conditional=true.")
        if generator is None or isinstance(generator, int):
            generator = torch.Generator(device=self.device).manual_seed(
                self.seed if generator is None else generator
            )
        labels = torch.full((int(n),), int(label), dtype=torch.long, device=self.device)
        w = self.config.guidance if guidance is None else float(guidance)
        with torch.no_grad():
            z = self._sample_labels(labels, w, generator)
        return self.scaler.to_x(z.float().cpu())

    def guidance_views(self, n: int = 200) -> dict:
        """Samples of every class at the current w, and the sweep over GUIDANCE_WEIGHTS against the
        training points of each class (lab.diffusion.throttled keeps both cheap)."""
        from lab.diffusion import throttled

        k = self.n_classes
        w = float(self.config.guidance)

        def samples() -> dict:  # cached per w: a new w draws at once, the old w's pictures are dropped
            for old in [name for name in cache if name.startswith("guided") and name != key]:
                del cache[old]
            g = torch.Generator(device=self.device).manual_seed(self.seed + 555)
            xs = [self.sample_class(n, c, w, g).numpy() for c in range(k)]
            return {"w": w, "samples": np.concatenate(xs), "labels": np.repeat(np.arange(k), n)}

        def sweep() -> dict:
            refs = [self.to_x(self.train_z[self.train_y == c][:400]) for c in range(k)]
            return guidance_sweep(self, refs, n=256, seed=self.seed + 777)

        if k == 0 or self.train_y is None:
            return {}
        cache, key = self.__dict__.setdefault("_view_cache", {}), f"guided{n}_{w}"
        return {
            **throttled(self, key, samples),
            "sweep": throttled(self, "guidance_sweep", sweep, every=30.0),
        }


# ---------------------------------------------------------------------------------------------
# Measures: what guidance does to each class
# ---------------------------------------------------------------------------------------------


def knn_precision_recall(samples: np.ndarray, reference: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) in 2D.

    A set's region is the union of balls around its points, each with the radius of the distance to its
    k-th nearest neighbour in the set. precision: the share of samples inside the reference's region (in
    the class's region); recall: the share of reference points inside the samples' region (the class's
    support the samples cover). Guidance raises the first and, past a point, lowers the second.
    """
    s = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
    r = torch.as_tensor(np.asarray(reference), dtype=torch.float64)

    def radii(a: torch.Tensor) -> torch.Tensor:
        d = torch.cdist(a, a)
        return d.kthvalue(min(k + 1, len(a)), dim=1).values  # the 0 to itself is the first

    def inside(points: torch.Tensor, centres: torch.Tensor) -> float:
        return float((torch.cdist(points, centres) <= radii(centres)[None]).any(1).double().mean())

    if len(s) < 2 or len(r) < 2:
        return float("nan"), float("nan")
    return inside(s, r), inside(r, s)


@dataclass
class GuidanceRow:
    """One class at one guidance weight."""

    label: int
    w: float
    energy: float  # energy distance of the samples to the class's reference points
    precision: float  # share of samples in the class's region
    recall: float  # share of the class's support the samples cover
    modes: int | None = None  # modes of the class covered (mixtures)
    n_modes: int | None = None


def guidance_sweep(
    model,
    references: list[np.ndarray],
    weights=GUIDANCE_WEIGHTS,
    n: int = 1000,
    seed: int = 0,
    modes: list[np.ndarray] | None = None,
    mode_std: float | None = None,
) -> dict:
    """For every class k and weight w: n samples of class k at w against references[k] (data coordinates).

    Returns {"w": [...], "energy": [K, W], "precision": [K, W], "recall": [K, W], and with `modes`
    "modes": [K, W], "n_modes": [K]} as plain lists."""
    out: dict = {"w": [float(w) for w in weights], "energy": [], "precision": [], "recall": []}
    if modes is not None:
        out["modes"], out["n_modes"] = [], [len(m) for m in modes]
    for k, ref in enumerate(references):
        rows = [_measure(model, k, float(w), ref, n, seed, modes, mode_std) for w in weights]
        out["energy"].append([r.energy for r in rows])
        out["precision"].append([r.precision for r in rows])
        out["recall"].append([r.recall for r in rows])
        if modes is not None:
            out["modes"].append([r.modes for r in rows])
    return out


def _measure(model, k, w, ref, n, seed, modes, mode_std) -> GuidanceRow:
    x = model.sample_class(n, k, w, generator=seed).numpy()
    prec, rec = knn_precision_recall(x, ref[: max(n, 2)])
    row = GuidanceRow(k, w, energy_distance(x, ref), prec, rec)
    if modes is not None:
        mc = mode_coverage(x, modes[k], mode_std)
        row.modes, row.n_modes = mc.modes, mc.n_modes
    return row
