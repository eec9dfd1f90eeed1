"""Flow matching live: the velocity field scrubbed over t, straight or curved paths, solver steps, exact density."""

import streamlit as st

st.title("Flow matching and rectified flow")  # before the heavy imports: the page paints while torch loads

from lab.fm import FlowMatching  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import fm as fv  # noqa: E402
from pages import family_page as fp  # noqa: E402
from pages import ui  # noqa: E402

MAIN = ["coupling", "target", "reflow", "reflow_every"]
SAMPLING = ["sampler", "steps", "density_steps"]  # live: change without retraining

st.caption(
    "A straight path from noise to data, x_t = (1 − t) x₀ + t x₁, and a network v_θ(x_t, t) that regresses its "
    "velocity x₁ − x₀. Sampling solves dx/dt = v_θ from t = 0 to 1; the same ODE run backwards, with the "
    "divergence of v_θ (two autograd terms in 2D), gives the exact log-density. With independent pairs the "
    "target is the stable target field, the mean of x₁ − x₀ given x_t over a reference batch: the same "
    "minimiser with far less noise. Independent pairs (I-CFM) give "
    "crossing paths and a curved flow; optimal-transport pairs within a batch (OT-CFM) and reflow (rectified "
    "flow: retrain on the model's own noise → sample pairs) straighten it, so fewer solver steps suffice. "
    "On labelled data (conditional), classifier-free guidance with weight w sharpens each class."
)
ui.url_notes()
ui.lecture_notes("fm")
runner = ui.get_runner()

ds, cfg, budget, seed = fp.sidebar(FlowMatching, "fm", [MAIN, SAMPLING, fp.GUIDANCE], budget=60.0)
fp.need_data(ds)

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
    ui.metric_row(snap, fp.EXPLICIT[:3] + [("floor", "energy_distance_floor", ".4f")] + fp.EXPLICIT[3:])
    fp.density_pair("fm", snap, truth, ds, data, seed)
    vt = snap.views_time  # the family's own pictures are rebuilt when they change
    c = st.columns(2)
    ui.chart("fm.fig_paths", vt, lambda: fv.paths_figure(v, b, data), c[0])
    ui.chart("fm.fig_field", (vt, t_pick), lambda: fv.velocity_field_figure(v, t_pick, data), c[1])
    c = st.columns(2)
    ui.chart("fm.fig_steps", vt, lambda: fv.steps_figure(v), c[0])
    fp.loss_curve("fm", snap, "loss", "Training loss |v_θ − (x₁ − x₀)|²", c[1], log_y=True)
    fp.guidance("fm", snap, cfg, ds, data)


view()
ui.record_expander(runner, {rid: "flow matching"}, ds.bounds(), "fm")
ui.sync_url()
