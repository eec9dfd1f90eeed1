"""Datasets: the true densities, your own points, and a Gaussian mixture fitted live by EM."""

import streamlit as st

# the title before the heavy imports: right after a cold start another page's thread may still be
# importing torch and scikit-learn, and these imports would wait for it
st.title("Datasets")
st.caption(
    "Every built-in density is known exactly, so the lab can measure how far each model is from the truth."
)

from lab.classical import GMM  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import curves, density_figure  # noqa: E402
from lab.viz.classical import gmm_figure  # noqa: E402
from pages import ui  # noqa: E402

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
with right:
    ui.controls(runner, [rid], "datasets")


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
ui.sync_url()
