"""Normalizing flows live: the learned density beside the truth, the base grid warped layer by layer, log|det J|."""

import dataclasses

import streamlit as st

st.title("Normalizing flows")  # before the heavy imports: the page paints while torch loads

from lab.flow import Flow  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import curves, density_figure  # noqa: E402
from lab.viz import flow as fv  # noqa: E402
from pages import ui  # noqa: E402

MAIN = ["variant", "layers", "hidden", "bins"]
UNUSED = {"spline": (), "affine": ("bins", "tail_bound"), "planar": ("bins", "tail_bound", "hidden", "depth")}

st.caption(
    "An invertible map f carries a standard Gaussian to the data, and the change of variables gives the exact "
    "likelihood: log p(x) = log N(f⁻¹(x); 0, I) + log |det ∂f⁻¹/∂x|. Coupling layers (spline or affine) invert "
    "in closed form; planar flows are the classic that shows the limits — each layer only bends the plane "
    "along one direction, and here their inverse is found numerically (bisection, one scalar per layer)."
)
ui.url_notes()
ui.lecture_notes("flow")
runner = ui.get_runner()

with st.sidebar:
    ds = ui.dataset_picker("flows")
    main = ui.config_form(Flow.Config, "flows", only=MAIN)
    with st.expander("network and optimiser"):
        rest = ui.config_form(Flow.Config, "flows", skip=tuple(MAIN) + UNUSED[main.variant])
    cfg = dataclasses.replace(rest, **{k: getattr(main, k) for k in MAIN})
    budget = ui.budget_widget("flows", 30.0)
    seed = ui.seed_widget("flows")

if ds is None:
    st.info("Choose a dataset, or upload a CSV with two numeric columns.")
    st.stop()

rid = ui.ensure_run(runner, "flows/flow", RunSpec("flow", ds, cfg, seed=seed, max_seconds=budget))
ui.controls(runner, [rid], "flows")
truth = ui.truth_grid(ds)
data = ds.sample(1000, seed)
ui.linked("flows.layer", 100, lo=0, hi=100)
layer_pick = st.slider(
    "layers applied (pictures below: 0 = base Gaussian, right = the model)", 0, 100, 100, 5, key="flows.layer"
)


@ui.live(runner)
def view():
    snap = runner.snapshot(rid) if rid else None
    if not ui.drawn(snap):
        return
    ui.status(snap)
    v, b = snap.views, ds.bounds()
    ui.metric_row(
        snap,
        [
            ("test NLL", "test_nll", ".3f"),
            ("KL to truth", "kl_to_truth", ".3f"),
            ("energy distance", "energy_distance", ".4f"),
            ("modes", "modes", "d"),
        ],
    )
    c = st.columns(2)
    t, vt = snap.time, snap.views_time
    ui.chart(
        "flows.fig_model",
        t,
        lambda: density_figure(snap.density, snap.samples, f"Learned density, step {snap.step:,}", b),
        c[0],
    )
    ui.chart(
        "flows.fig_truth",
        (id(truth), id(ds), seed),
        lambda: density_figure(truth, None, "True density", b, data=data if truth is None else None),
        c[1],
    )
    idx = round(layer_pick / 100 * (len(v["layers"]) - 1))
    c = st.columns(2)
    ui.chart("flows.fig_warp", (vt, idx), lambda: fv.warp_figure(v, idx, b), c[0])
    ui.chart("flows.fig_layers", (vt, idx), lambda: fv.layer_density_figure(v, idx, b), c[1])
    c = st.columns(2)
    ui.chart("flows.fig_anim", vt, lambda: fv.flow_animation_figure(v, b), c[0])
    ui.chart("flows.fig_logdet", vt, lambda: fv.log_det_figure(v, b), c[1])
    hist = {k: snap.metrics[k] for k in ("test_nll", "kl_to_truth", "val_nll") if k in snap.metrics}
    c = st.columns(2)
    ui.chart("flows.fig_metrics", vt, lambda: curves(hist, "Held-out NLL and KL to truth (nats)"), c[0])
    ui.chart(
        "flows.fig_loss",
        vt,
        lambda: curves({"nll": snap.losses["nll"]} if "nll" in snap.losses else {}, "Training NLL (batch)"),
        c[1],
    )


view()
ui.sync_url()
