"""Flow matching live: the velocity field scrubbed over t, straight or curved paths, solver steps, exact density."""

import dataclasses

import streamlit as st

st.title("Flow matching and rectified flow")  # before the heavy imports: the page paints while torch loads

from lab.fm import FlowMatching  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import curves, density_figure  # noqa: E402
from lab.viz import fm as fv  # noqa: E402
from pages import ui  # noqa: E402

MAIN = ["coupling", "reflow", "reflow_every"]
SAMPLING = ["sampler", "steps", "density_steps"]  # live: change without retraining

st.caption(
    "A straight path from noise to data, x_t = (1 − t) x₀ + t x₁, and a network v_θ(x_t, t) that regresses its "
    "velocity x₁ − x₀. Sampling solves dx/dt = v_θ from t = 0 to 1; the same ODE run backwards, with the "
    "divergence of v_θ (two autograd terms in 2D), gives the exact log-density. Independent pairs (I-CFM) give "
    "crossing paths and a curved flow; optimal-transport pairs within a batch (OT-CFM) and reflow (rectified "
    "flow: retrain on the model's own noise → sample pairs) straighten it, so fewer solver steps suffice."
)
ui.url_notes()
ui.lecture_notes("fm")
runner = ui.get_runner()

with st.sidebar:
    ds = ui.dataset_picker("fm", default="moons")
    main = ui.config_form(FlowMatching.Config, "fm", only=MAIN)
    sampling = ui.config_form(FlowMatching.Config, "fm", only=SAMPLING)
    with st.expander("network and optimiser"):
        rest = ui.config_form(FlowMatching.Config, "fm", skip=tuple(MAIN + SAMPLING))
    cfg = dataclasses.replace(
        rest, **{k: getattr(main, k) for k in MAIN}, **{k: getattr(sampling, k) for k in SAMPLING}
    )
    budget = ui.budget_widget("fm", 60.0)
    seed = ui.seed_widget("fm")

if ds is None:
    st.info("Choose a dataset, or upload a CSV with two numeric columns.")
    st.stop()

rid = ui.ensure_run(runner, "fm/fm", RunSpec("fm", ds, cfg, seed=seed, max_seconds=budget))
ui.controls(runner, [rid], "fm")
truth = ui.truth_grid(ds)
data = ds.sample(1000, seed)
ui.linked("fm.t", 2, choices=list(range(5)))
t_pick = st.select_slider(
    "velocity field at t (0 = noise, 4 = data)",
    list(range(5)),
    2,
    key="fm.t",
    format_func=lambda i: f"t = {i / 4:g}",
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
            ("floor", "energy_distance_floor", ".4f"),
            ("modes", "modes", "d"),
        ],
    )
    t, vt = snap.time, snap.views_time  # figures are rebuilt when what they show changes
    c = st.columns(2)
    ui.chart(
        "fm.fig_model",
        t,
        lambda: density_figure(snap.density, snap.samples, f"Learned density, step {snap.step:,}", b),
        c[0],
    )
    ui.chart(
        "fm.fig_truth",
        (id(truth), id(ds), seed),
        lambda: density_figure(truth, None, "True density", b, data=data if truth is None else None),
        c[1],
    )
    c = st.columns(2)
    ui.chart("fm.fig_paths", vt, lambda: fv.paths_figure(v, b, data), c[0])
    ui.chart("fm.fig_field", (vt, t_pick), lambda: fv.velocity_field_figure(v, t_pick, data), c[1])
    c = st.columns(2)
    ui.chart("fm.fig_steps", vt, lambda: fv.steps_figure(v), c[0])
    ui.chart(
        "fm.fig_loss",
        vt,
        lambda: curves(
            {"loss": snap.losses["loss"]} if "loss" in snap.losses else {},
            "Training loss |v_θ − (x₁ − x₀)|²",
            log_y=True,
        ),
        c[1],
    )


view()
ui.sync_url()
