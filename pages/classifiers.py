"""Classifiers: generative (p(x|y) per class + Bayes' rule) vs discriminative (P(y|x) directly), missing inputs, scarce labels."""

import numpy as np
import streamlit as st

st.title(
    "Generative vs discriminative classifiers"
)  # before the heavy imports: the page paints while torch loads

from lab import classify as C  # noqa: E402
from lab.classical import GMMConfig  # noqa: E402
from lab.data import DataError, points_from_array  # noqa: E402
from lab.live.session import JobError, RunDensity  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import concepts as cv  # noqa: E402
from pages import ui  # noqa: E402

st.caption(
    "A discriminative classifier fits P(y|x) directly (logistic regression, an MLP). A generative one fits a density "
    "p(x|y) per class with any family of the lab, then applies Bayes' rule: P(y|x) = p(x|y) P(y) / Σ p(x|y') P(y'). "
    "Because it models x, it can integrate out a coordinate that is missing at test time."
)
runner = ui.get_runner()
families = C.density_families()

with st.sidebar:
    ui.linked("classifiers.data", list(C.LABELLED)[0], choices=list(C.LABELLED) + ["upload"])
    src = st.selectbox(
        "labelled data",
        list(C.LABELLED) + ["upload"],
        key="classifiers.data",
        format_func=lambda n: f"{n}: {C.LABELLED[n]}" if n in C.LABELLED else "your CSV (x, y, label)",
    )
    ui.linked("classifiers.k", 2, choices=[2, 3])
    n_classes = st.radio("classes", [2, 3], horizontal=True, key="classifiers.k") if "gaussians" in src else 2
    ui.linked("classifiers.labels", 1000, choices=[3, 5, 10, 20, 50, 100, 300, 1000])
    per_class = st.select_slider(
        "labelled points per class",
        [3, 5, 10, 20, 50, 100, 300, 1000],
        1000,
        key="classifiers.labels",
        help="few labels: the scarce-label regime",
    )
    ui.linked("classifiers.family", list(families)[0], choices=list(families))
    key = st.selectbox(
        "family for p(x|y)", list(families), format_func=families.get, key="classifiers.family"
    )
    budget = ui.budget_widget("classifiers", 10.0)
    seed = ui.seed_widget("classifiers")


@st.cache_resource(max_entries=16, show_spinner=False)
def labelled(src: str, n_classes: int, seed: int, raw: bytes | None, per_class: int):
    """(train, test, per-class point sets): one object per setting, so the runs are not rebuilt on each rerun."""
    full = (
        C.parse_labelled_csv(raw.decode("utf-8-sig"))
        if raw is not None
        else C.labelled_dataset(src, 2000, seed, n_classes=n_classes)
    )
    train, test = full.split(0.5, seed)
    train = train.scarce(per_class, seed)
    return (
        train,
        test,
        [points_from_array(train.of_class(k), label=train.classes[k]) for k in range(train.n_classes)],
    )


@st.cache_resource(max_entries=16, show_spinner="fitting logistic regression and the MLP")
def discriminative(src, n_classes, seed, raw, per_class):
    train = labelled(src, n_classes, seed, raw, per_class)[0]
    return {kind: C.DiscriminativeClassifier(kind, seed).fit(train) for kind in C.DISCRIMINATIVE}


raw = None
if src == "upload":
    up = st.sidebar.file_uploader(
        "CSV with x, y, label columns", type=["csv", "txt"], key="classifiers.upload"
    )
    if up is None:
        st.info("Upload a CSV with three columns: x, y and a class label (words or numbers).")
        st.stop()
    raw = up.getvalue()
try:
    train, test, class_sets = labelled(src, n_classes, seed, raw, per_class)
except DataError as e:
    st.error(str(e))
    st.stop()
disc = discriminative(src, n_classes, seed, raw, per_class)
bounds = train.bounds_or_fit()
ids = [
    ui.ensure_run(
        runner,
        f"classifiers/class{k}",
        RunSpec(key, pts, None, seed=seed + k, n_train=len(pts.points), max_seconds=budget),
    )
    for k, pts in enumerate(class_sets)
]
for k in range(len(ids), C.MAX_CLASSES):
    runner.remove(f"classifiers/class{k}")
st.caption(
    f"{len(train.y):,} labelled training points ({', '.join(f'{n} {c}' for c, n in zip(train.classes, np.bincount(train.y)))}), "
    f"{len(test.y):,} test points. Train one {families[key]} per class:"
)
ui.controls(runner, ids, "classifiers")


def generative():
    """Bayes' rule over the class densities, each evaluated in its run's worker; None until they are built."""
    snaps = [runner.snapshot(i) if i else None for i in ids]
    if not all(s is not None and s.status not in ("building", "error") for s in snaps):
        return None
    try:
        return C.GenerativeClassifier(
            [RunDensity(runner, i) for i in ids], train.priors(), C.missing_range(train)
        )
    except (JobError, ValueError) as e:
        st.warning(str(e))
        return None


@ui.live(runner, every=0.5)
def view():
    gen = generative()
    if gen is None:
        return
    ui.status(runner.snapshot(ids[0]))
    left, right = st.columns(2)
    for col, clf, name, title in [
        (left, disc["mlp"], "disc", "Discriminative: MLP P(y|x)"),
        (right, gen, "gen", f"Generative: Bayes' rule over {families[key]}"),
        (left, disc["logistic"], "log", "Discriminative: logistic regression (linear boundary)"),
    ]:
        ui.live_chart(
            cv.posterior_figure(
                C.proba_grid(clf, bounds, 60), train.x, train.y, train.classes, title, bounds
            ),
            key=f"classifiers.{name}",
            where=col,
        )
    g = C.class_log_prob_grid(gen, bounds, 60)
    ui.live_chart(
        cv.class_density_figure(
            g["log_p"],
            g["x"],
            g["y"],
            train.x,
            train.y,
            train.classes,
            "Learned class-conditionals p(x|y)",
            bounds,
        ),
        key="classifiers.dens",
        where=right,
    )
    acc = C.scores({"logistic regression": disc["logistic"], "MLP": disc["mlp"], "generative": gen}, test)
    for col, (name, a) in zip(st.columns(3), acc.items()):
        col.metric(f"test accuracy, {name}", f"{a:.1%}")


view()

st.subheader("A coordinate missing at test time")
ui.linked("classifiers.missing", 1, choices=[1, 0])
missing = st.radio(
    "hidden coordinate", [1, 0], format_func=lambda d: f"x{d + 1}", horizontal=True, key="classifiers.missing"
)
if runner.busy:
    st.caption(
        "Shown when training is paused or done (integrating each class density over a grid takes a moment)."
    )
elif (gen := generative()) is not None:
    clfs = {
        "generative (marginalised)": gen,
        "MLP (mean imputed)": disc["mlp"],
        "logistic (mean imputed)": disc["logistic"],
    }
    lo, hi = (bounds[0], bounds[1]) if missing == 1 else (bounds[2], bounds[3])
    curves = {n: C.missing_curve(c, train, missing, lo, hi, 120) for n, c in clfs.items()}
    ui.live_chart(
        cv.missing_figure(
            curves,
            train.classes,
            1 - missing,
            train.x,
            train.y,
            f"P(class | x{2 - missing} only), x{missing + 1} unknown",
        ),
        key="classifiers.miss",
    )
    acc = C.scores(clfs, test, missing)
    for col, (name, a) in zip(st.columns(3), acc.items()):
        col.metric(f"accuracy without x{missing + 1}: {name}", f"{a:.1%}")
    st.caption(
        "The generative classifier computes P(y|x_obs) ∝ P(y) ∫ p(x_obs, x_miss | y) dx_miss (exactly for a GMM, on a "
        "400-point grid otherwise). The discriminative ones never modelled x, so they can only guess the missing value "
        "(here: its training mean) — or be retrained on the other coordinate alone."
    )

st.subheader("Scarce labels")
st.caption(
    "Generative classifiers reach their best accuracy with fewer labels; discriminative ones catch up and overtake "
    "with many (Ng & Jordan 2001). Measured with a GMM per class (6 components) on this data:"
)
if st.button("Measure accuracy vs labels per class", key="classifiers.curve"):
    full_train = labelled(src, n_classes, seed, raw, 10**9)[0]
    sizes = [s for s in (3, 5, 10, 30, 100, 300) if s <= np.bincount(full_train.y).min()]
    with st.spinner("training 3 classifiers per size"):
        curve = C.label_curve(
            full_train, test, sizes, "gmm", seed, max_seconds=2.0, config=GMMConfig(n_components=6, bic=False)
        )
    ui.live_chart(
        cv.label_curve_figure(curve, "test accuracy vs labelled points per class"), key="classifiers.curvefig"
    )
ui.record_expander(runner, {i: i.split("/")[1] for i in ids if i}, bounds, "classifiers")
ui.sync_url()
