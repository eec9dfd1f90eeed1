"""Normalizing flows live: the learned density beside the truth, the base grid warped layer by layer, log|det J|."""

import streamlit as st

st.title("Normalizing flows")  # before the heavy imports: the page paints while torch loads

from lab.flow import Flow  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import flow as fv  # noqa: E402
from pages import family_page as fp  # noqa: E402
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

ds, cfg, budget, seed = fp.sidebar(Flow, "flows", [MAIN], skip=lambda main: UNUSED[main.variant])
fp.need_data(ds)

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
    ui.metric_row(snap, fp.EXPLICIT)
    fp.density_pair("flows", snap, truth, ds, data, seed)
    vt = snap.views_time
    idx = round(layer_pick / 100 * (len(v["layers"]) - 1))
    c = st.columns(2)
    ui.chart("flows.fig_warp", (vt, idx), lambda: fv.warp_figure(v, idx, b), c[0])
    ui.chart("flows.fig_layers", (vt, idx), lambda: fv.layer_density_figure(v, idx, b), c[1])
    c = st.columns(2)
    ui.chart("flows.fig_anim", vt, lambda: fv.flow_animation_figure(v, b), c[0])
    ui.chart("flows.fig_logdet", vt, lambda: fv.log_det_figure(v, b), c[1])
    c = st.columns(2)
    fp.nll_curves("flows", snap, c[0])
    fp.loss_curve("flows", snap, "nll", "Training NLL (batch)", c[1])


view()
ui.record_expander(runner, {rid: "flow"}, ds.bounds(), "flows")
ui.sync_url()
