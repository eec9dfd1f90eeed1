"""Page pieces that the family pages share: a family's sidebar, the learned-vs-true density pair, the metrics,
and the guidance view of a class-conditional model (flow matching, diffusion)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import streamlit as st

from lab.data import DataError, Dataset
from lab.guidance import class_names, load_labelled_points
from lab.viz import curves, density_figure
from lab.viz import paths as pv
from pages import ui

GUIDANCE = ["conditional", "p_uncond", "guidance"]  # conditional models (fm, ddpm): labels, label dropout, w
EXPLICIT = [  # the metrics of a family with an exact density
    ("test NLL", "test_nll", ".3f"),
    ("KL to truth", "kl_to_truth", ".3f"),
    ("energy distance", "energy_distance", ".4f"),
    ("modes", "modes", "d"),
]


def sidebar(
    cls,
    prefix: str,
    groups: list[list[str]],
    skip: Callable[[object], tuple] = lambda main: (),
    default_data: str = "moons",
    budget: float = 30.0,
):
    """The dataset, one form per group of config fields (the first group's values decide `skip`), the rest
    under "network and optimiser", the budget and the seed. Returns (dataset or None, config, budget, seed).

    With a GUIDANCE group and conditional on, a CSV with a label column may replace the dataset."""
    with st.sidebar:
        ds = ui.dataset_picker(prefix, default=default_data)
        forms = [ui.config_form(cls.Config, prefix, only=g) for g in groups]
        grouped = [f for g in groups for f in g]
        with st.expander("network and optimiser"):
            rest = ui.config_form(cls.Config, prefix, skip=tuple(grouped) + tuple(skip(forms[0])))
        cfg = dataclasses.replace(rest, **{f: getattr(form, f) for g, form in zip(groups, forms) for f in g})
        if getattr(cfg, "conditional", False) is True:  # (ar's conditional is a word: "mog" or "softmax")
            ds = labelled_upload(prefix) or ds
        seconds = ui.budget_widget(prefix, budget)
        seed = ui.seed_widget(prefix)
    return ds, cfg, seconds, seed


def labelled_upload(prefix: str) -> Dataset | None:
    """A CSV with x, y, label columns for a conditional model (errors in one sentence)."""
    up = st.file_uploader(
        "or a labelled CSV (x, y, label)", type=["csv", "txt"], key=f"{prefix}.labelled_upload"
    )
    if up is None:
        return None
    cache = st.session_state.setdefault("_labelled_uploads", {})
    ck = (up.name, up.size, getattr(up, "file_id", ""))
    if ck not in cache:
        try:
            cache[ck] = load_labelled_points(up.getvalue(), label=up.name)
        except DataError as e:
            cache[ck] = e
    if isinstance(cache[ck], DataError):
        st.error(str(cache[ck]))
        return None
    st.caption(f"{len(cache[ck].points):,} points in {len(cache[ck].classes)} classes from {up.name}")
    return cache[ck]


def need_data(ds: Dataset | None) -> None:
    if ds is None:
        st.info("Choose a dataset, or upload a CSV with two numeric columns.")
        st.stop()


def density_pair(prefix: str, snap, truth, ds: Dataset, data, seed: int) -> None:
    """Two columns: the learned density with the samples, and the true density (or the data)."""
    b, c = ds.bounds(), st.columns(2)
    ui.chart(
        f"{prefix}.fig_model",
        snap.time,
        lambda: density_figure(snap.density, snap.samples, f"Learned density, step {snap.step:,}", b),
        c[0],
    )
    ui.chart(
        f"{prefix}.fig_truth",
        (id(truth), id(ds), seed),
        lambda: density_figure(truth, None, "True density", b, data=data if truth is None else None),
        c[1],
    )


def nll_curves(prefix: str, snap, where=None) -> None:
    """Held-out NLL and KL to the truth over training."""
    hist = {k: snap.metrics[k] for k in ("test_nll", "kl_to_truth", "val_nll") if k in snap.metrics}
    ui.chart(
        f"{prefix}.fig_metrics",
        snap.views_time,
        lambda: curves(hist, "Held-out NLL and KL to truth (nats)"),
        where,
    )


def loss_curve(prefix: str, snap, name: str, title: str, where=None, log_y: bool = False) -> None:
    ui.chart(
        f"{prefix}.fig_loss",
        snap.views_time,
        lambda: curves({name: snap.losses[name]} if name in snap.losses else {}, title, log_y=log_y),
        where,
    )


def guidance(prefix: str, snap, cfg, ds: Dataset, data) -> None:
    """A conditional model's samples coloured by class at the current w, and what w does to each class."""
    if getattr(cfg, "conditional", False) is not True:
        return
    st.subheader(f"Classifier-free guidance, w = {cfg.guidance:g}")
    classes = class_names(ds)
    c = st.columns(2)
    v, vt = snap.views, snap.views_time
    ui.chart(
        f"{prefix}.fig_guided", vt, lambda: pv.guided_samples_figure(v, classes, ds.bounds(), data), c[0]
    )
    ui.chart(f"{prefix}.fig_guidance", vt, lambda: pv.guidance_sweep_figure(v, classes), c[1])
    st.caption(
        "Sampling follows (1 + w) f(x, c) − w f(x, ∅): w = 0 is the conditional model; larger w pushes each "
        "class away from the others (higher precision: samples inside the class's region) and, past a point, "
        "drops parts of it (lower recall: less of its support covered). The sweep is measured on the current "
        "weights every 30 s against the training points of each class; change w live, no retraining."
    )
