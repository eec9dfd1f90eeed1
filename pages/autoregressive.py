"""Autoregressive models live: p(x) = p(x_first) p(x_second | x_first), slices, ordering, sequential sampling."""

import dataclasses

import streamlit as st

st.title("Autoregressive models")  # before the heavy imports: the page paints while torch loads

from lab.autoregressive import Autoregressive, load_ladder, true_conditional_log_prob  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import autoregressive as av  # noqa: E402
from lab.viz import curves, density_figure  # noqa: E402
from pages import ui  # noqa: E402

MAIN = ["conditional", "conditioner", "order", "components", "bins"]
UNUSED = {"mog": ("bins", "bound"), "softmax": ("components",)}

st.caption(
    "The 2D PixelRNN / PixelCNN: p(x) = p(x_first) · p(x_second | x_first), each a 1D density — a mixture of "
    "Gaussians or a softmax over bins. A masked network (MADE, PixelCNN-style) gives every conditional in one "
    "parallel pass for training; a recurrent one (GRU, PixelRNN-style) walks the dimensions in training too; "
    "sampling is sequential for both. Swap the order: with little capacity, one direction can be much easier."
)
ui.url_notes()
ui.lecture_notes("ar")
runner = ui.get_runner()

with st.sidebar:
    ds = ui.dataset_picker("autoregressive")
    main = ui.config_form(Autoregressive.Config, "autoregressive", only=MAIN)
    with st.expander("network and optimiser"):
        rest = ui.config_form(
            Autoregressive.Config, "autoregressive", skip=tuple(MAIN) + UNUSED[main.conditional]
        )
    cfg = dataclasses.replace(rest, **{k: getattr(main, k) for k in MAIN})
    budget = ui.budget_widget("autoregressive", 30.0)
    seed = ui.seed_widget("autoregressive")

if ds is None:
    st.info("Choose a dataset, or upload a CSV with two numeric columns.")
    st.stop()

rid = ui.ensure_run(runner, "autoregressive/ar", RunSpec("ar", ds, cfg, seed=seed, max_seconds=budget))
ui.controls(runner, [rid], "autoregressive")
truth = ui.truth_grid(ds)
data = ds.sample(1000, seed)
c = st.columns(2)
ui.linked("autoregressive.c", 50, lo=0, hi=100)
where = c[0].slider(
    "slice position c (left → right along the first variable)", 0, 100, 50, key="autoregressive.c"
)
ui.linked("autoregressive.seq_step", 2, choices=[1, 2])
step = c[1].radio(
    "sequential sampling",
    [1, 2],
    index=1,
    horizontal=True,
    key="autoregressive.seq_step",
    format_func=lambda s: "step 1: first variable" if s == 1 else "step 2: then the second",
)


@ui.live(runner)
def view():
    snap = runner.snapshot(rid) if rid else None
    if not ui.drawn(snap):
        return
    ui.status(snap)
    v, b = snap.views, ds.bounds()
    idx = round(where / 100 * (len(v["slice_c"]) - 1))
    ui.metric_row(
        snap,
        [
            ("test NLL", "test_nll", ".3f"),
            ("KL to truth", "kl_to_truth", ".3f"),
            ("energy distance", "energy_distance", ".4f"),
            ("modes", "modes", "d"),
        ],
    )
    t, vt = (snap.time, idx), (snap.views_time, idx)  # figures are rebuilt when what they show changes
    c = st.columns(2)
    ui.chart(
        "autoregressive.fig_model",
        t,
        lambda: av.slice_on_density(
            density_figure(snap.density, snap.samples, f"Learned density, step {snap.step:,}", b), v, idx
        ),
        c[0],
    )
    ui.chart(
        "autoregressive.fig_truth",
        vt,
        lambda: av.slice_on_density(
            density_figure(truth, None, "True density", b, data=data if truth is None else None), v, idx
        ),
        c[1],
    )
    c = st.columns(2)

    def conditional():
        true_slice = (
            true_conditional_log_prob(ds, v["order"][0], v["slice_c"][idx], v["slice_x"])
            if ds.has_density
            else None
        )
        return av.conditional_figure(v, idx, true_slice)

    ui.chart("autoregressive.fig_marginal", vt, lambda: av.marginal_figure(v, v["slice_c"][idx]), c[0])
    ui.chart("autoregressive.fig_conditional", vt, conditional, c[1])
    c = st.columns(2)
    ui.chart(
        "autoregressive.fig_sequential", (vt, step), lambda: av.sequential_figure(v, step, b, data), c[0]
    )
    hist = {k: snap.metrics[k] for k in ("test_nll", "kl_to_truth", "val_nll") if k in snap.metrics}
    ui.chart(
        "autoregressive.fig_metrics", vt, lambda: curves(hist, "Held-out NLL and KL to truth (nats)"), c[1]
    )
    a, b = v["order"][0] + 1, v["order"][1] + 1
    st.caption(
        f"Order {cfg.order}: the model samples x{a} first, then x{b} given it."
        + (
            f" Of your rows with a missing coordinate, {v.get('rows_first_only', 0):,} (missing x{b}) train "
            f"p(x{a}) only and {v.get('rows_ignored', 0):,} (missing x{a}) are ignored: their p(x{b}) would "
            f"need an integral over x{a} in every step."
            if v.get("rows_first_only") or v.get("rows_ignored")
            else ""
        )
    )


view()
ui.record_expander(runner, {rid: "autoregressive"}, ds.bounds(), "autoregressive")

st.subheader("PixelRNN vs PixelCNN: the cost of sequential sampling as d grows")
ladder = load_ladder()
c = st.columns(3)
for col, k in zip(c, ("sample_1_s", "sample_1000_s", "train_step_s")):
    ui.chart(f"autoregressive.ladder_{k}", "ladder", lambda: av.ladder_figure(ladder, k), col)
if ladder:
    s = ladder["settings"]
    st.caption(
        f"Measured by bench/ar_ladder.py on {ladder['measured_on']} (torch {ladder['torch']}, load average "
        f"{ladder['load_average']:.1f}, {ladder['date']}), mean of {len(ladder['seeds'])} seeds: the same model "
        f"(hidden {s['hidden']}, {s['components']} Gaussians a conditional) on d/2 independent copies of two "
        "moons. Sampling takes d sequential steps for both conditioners; the flow draws all d coordinates in "
        "one pass (the 2D flow on every pair at once). One point shows the latency of d passes; 1000 points on "
        "one CPU thread cost about their arithmetic (a GPU would run each pass's rows at once). Training: MADE is "
        "one pass whatever d, the GRU d steps."
    )
ui.sync_url()
