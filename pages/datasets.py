"""Datasets: the true densities, your own points, and a Gaussian mixture fitted live by EM."""

import streamlit as st

# the title before the heavy imports: right after a cold start another page's thread may still be
# importing torch and scikit-learn, and these imports would wait for it
st.title("Datasets")
st.caption(
    "Every built-in density is known exactly, so the lab can measure how far each model is from the truth."
)

from lab.classical import GMM  # noqa: E402
from lab.data import MissingData, dataset_volume_share, make_dataset  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import curves, density_figure  # noqa: E402
from lab.viz.classical import gmm_figure  # noqa: E402
from lab.viz.volume import volume_figure  # noqa: E402
from pages import ui  # noqa: E402


@st.cache_data(show_spinner="Measuring the volume…", max_entries=32)
def volume(name: str, params: tuple):
    return dataset_volume_share(make_dataset(name, **dict(params)))


ui.url_notes()
ui.lecture_notes("gmm", "kde")
runner = ui.get_runner()

with st.sidebar:
    ds = ui.dataset_picker("datasets")
    ui.linked("datasets.n_show", 1500, lo=200, hi=5000)
    n_show = st.slider("points shown", 200, 5000, 1500, step=100, key="datasets.n_show")
    st.subheader("Gaussian mixture (EM)")
    cfg = ui.config_form(GMM.Config, "datasets.gmm", only=["n_components", "bic", "covariance_type"])
    seed = ui.seed_widget("datasets")
    ui.linked("datasets.incomplete", False)
    incomplete = st.toggle("also learn from incomplete points", key="datasets.incomplete")
    ui.linked("datasets.missing", 50, lo=30, hi=70)
    share = st.slider("rows with a missing coordinate (%)", 30, 70, 50, step=5, key="datasets.missing")

if ds is None:
    st.info("Choose a dataset, or upload a CSV with two numeric columns.")
    st.stop()

truth = ui.truth_grid(ds)
points = ds.sample(n_show, seed)
left, right = st.columns(2)
title = f"{ds.title} — true density" if truth is not None else f"{ds.title} — {len(ds.points):,} points"
ui.live_chart(density_figure(truth, None, title, ds.bounds(), data=points), key="datasets.truth", where=left)
if ds.has_density:
    left.caption(f"Entropy of the true density: {ui.entropy(ds):.3f} nats (Monte Carlo, 20,000 points).")

rid = ui.ensure_run(runner, "datasets/gmm", RunSpec("gmm", ds, cfg, seed=seed, n_train=5000, max_steps=500))
# the same EM on incomplete points: your file's empty cells, or a built-in with `share` of rows knocked out
if not incomplete:
    use, drop = None, None
elif ds.has_density:
    use, drop = (MissingData(source=ds, share=share / 100, drop=d) for d in (False, True))
else:
    use, drop = (ds, ds.without_incomplete()) if len(ds.incomplete) else (None, None)
missing = [
    ui.ensure_run(runner, f"datasets/gmm_{k}", RunSpec("gmm", d, cfg, seed=seed, n_train=1000, max_steps=500))
    for k, d in (("use", use), ("drop", drop))
    if d is not None
]
with right:
    ui.controls(runner, [rid, *missing], "datasets")


@ui.live(runner)
def gmm_view():
    snap = runner.snapshot(rid)
    if not ui.drawn(snap):
        return
    ui.chart("datasets.gmm_fig", (snap.time, id(points)), lambda: gmm_figure(snap, ds.bounds(), points))
    ui.status(snap)
    ui.metric_row(
        snap,
        [
            ("test NLL", "test_nll", ".3f"),
            ("KL to truth", "kl_to_truth", ".3f"),
            ("energy distance", "energy_distance", ".4f"),
        ],
    )
    hist = {k: v for k, v in snap.metrics.items() if k in ("test_nll", "kl_to_truth", "val_nll")}
    if hist:
        ui.chart("datasets.curves", snap.time, lambda: curves(hist, "held-out NLL and KL over EM iterations"))


with right:
    gmm_view()

st.subheader("Learning from incomplete points")
st.caption(
    "EM integrates a missing coordinate out exactly (Ghahramani & Jordan 1994): the E step scores a row by "
    "the marginal density of what it observes, the M step fills in the conditional mean and adds the "
    "conditional covariance. Left: every row used; right: the complete rows only. Test NLL on full points."
    if missing
    else "Turn on 'also learn from incomplete points' (sidebar): a built-in density with a share of its rows "
    "knocked out, or your CSV's empty cells."
)


@ui.live(runner, with_state=False)
def missing_view():
    for col, r, name in zip(st.columns(2), missing, ("incomplete rows used", "complete rows only")):
        snap = runner.snapshot(r)
        if not ui.drawn(snap):
            continue
        title = f"{name}: test NLL {snap.latest_metrics.get('test_nll', float('nan')):.3f}"
        ui.chart(
            f"datasets.{r}", snap.time, lambda: density_figure(snap.density, None, title, ds.bounds()), col
        )


if missing:
    missing_view()
ui.record_expander(runner, {i: i.split("/")[1] for i in [rid, *missing] if i}, ds.bounds(), "datasets")

st.subheader("Real data occupy a negligible volume")
if ds.has_density:
    vs = volume(ds.name, tuple(sorted(ds.params().items())))
    st.caption(
        f"95 % of the mass of {ds.title} lies in {vs.share[0]:.2%} of the plot window. Its product with itself "
        "(d/2 independent copies) fills less and less of the box: the region {p >= t} holding 95 % of the "
        "mass, measured from 20,000 samples and their exact log-density (importance weights 1/p)."
    )
    ui.chart("datasets.volume", (ds.name, str(ds.params())), lambda: volume_figure(vs))
else:
    st.caption("Your points have no known density: choose a built-in one to measure its volume.")
ui.sync_url()
