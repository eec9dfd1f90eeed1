"""GAN: the adversarial game live: D and the optimal D*, JSD, where G is pushed, oscillations and damping, seeds."""

import dataclasses

import numpy as np
import streamlit as st

st.title("Generative adversarial network")  # before the heavy imports: the page paints while torch loads

from lab import dirac_gan as dg  # noqa: E402
from lab import gan_seeds as gs  # noqa: E402
from lab.gan import DCGAN_LESSON, GAN, damping_pair  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import density_figure  # noqa: E402
from lab.viz import gan as gv  # noqa: E402
from lab.viz.common import curves  # noqa: E402
from pages import ui  # noqa: E402

MAIN = ["loss", "d_steps", "pack", "r1_gamma"]
DIRAC = [  # the Dirac-GAN's widgets: name, label, choices, default
    ("lr", "step size", [0.02, 0.05, 0.1, 0.2, 0.5], 0.1),
    ("steps", "steps", [100, 250, 500, 1000, 2000], 500),
    ("loss", "loss", list(dg.LOSSES), "minimax"),
    ("gamma", "R1 γ", [0.1, 0.3, 0.5, 1.0], 0.5),
]
VIEWS = {"training": "Training", "oscillations": "Oscillations and damping", "seeds": "Seeds (sweep)"}

st.caption(
    "min_G max_D E log D(x) + E log(1 − D(G(z))). For a fixed G the best D is D* = p_data / (p_data + p_g), and "
    "V(D*, G) = −log 4 + 2 JSD(p_data, p_g): −log 4 exactly when p_g = p_data. Try minimax vs non-saturating, "
    "WGAN(-GP) and PacGAN packing on the 8 or 25 Gaussians. By default D pays an R1 penalty for slopes on the real "
    "data (r1_gamma = 0: none), and samples come from an EMA of G's weights (ema = 0: the raw G)."
)
ui.url_notes()
ui.lecture_notes("gan")
runner = ui.get_runner()

with st.sidebar:
    ds = ui.dataset_picker("gan", default="8gaussians")
    main = ui.config_form(GAN.Config, "gan", only=MAIN)
    with st.expander("networks and optimiser"):
        rest = ui.config_form(
            GAN.Config, "gan", only=[f.name for f in dataclasses.fields(GAN.Config) if f.name not in MAIN]
        )
    cfg = dataclasses.replace(rest, **{k: getattr(main, k) for k in MAIN})
    budget = ui.budget_widget("gan", 60.0)
    seed = ui.seed_widget("gan")

if ds is None:
    st.info("Choose a dataset, or upload a CSV with two numeric columns.")
    st.stop()
ui.linked("gan.view", "training", choices=list(VIEWS))
view_name = st.radio("view", list(VIEWS), format_func=VIEWS.get, horizontal=True, key="gan.view")
truth = ui.truth_grid(ds)
data = ds.sample(1000, seed)
pairs = damping_pair(cfg)
runs = {
    "training": {"gan/seed0": cfg},
    "oscillations": dict(zip(["gan/undamped", "gan/damped"], pairs.values())),
}
mine = runs.get(view_name, {})
for other in [i for v, r in runs.items() if v != view_name for i in r]:
    if (s := runner.snapshot(other)) and s.status == "running":
        runner.pause([other])  # one view trains at a time
ids = [
    ui.ensure_run(runner, i, RunSpec("gan", ds, c, seed=seed, max_seconds=budget)) for i, c in mine.items()
]
if ids:
    ui.controls(runner, ids, "gan")


@st.cache_data(max_entries=16, show_spinner=False)
def truth_on(name: str, params: tuple, bounds: tuple, size: int) -> np.ndarray:
    """The true log-density on the views' grid (rows = y)."""
    gx, gy = np.linspace(bounds[0], bounds[1], size), np.linspace(bounds[2], bounds[3], size)
    xx, yy = np.meshgrid(gx, gy)
    return (
        ui._cached_dataset(name, params).log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(size, size)
    )


def training():
    snap = runner.snapshot(ids[0]) if ids and ids[0] else None
    if not ui.drawn(snap):
        return
    ui.status(snap)
    v, s = snap.views, snap.samples
    keys = [("modes captured", "modes", ".0f"), ("high quality", "high_quality", ".1%")]
    ui.metric_row(snap, keys + [("energy distance", "energy_distance", ".4f")])
    t, vt = snap.time, snap.views_time  # figures are rebuilt when what they show changes
    c = st.columns(3)
    ui.chart(
        "gan.samples", t, lambda: density_figure(truth, s, f"Samples, step {snap.step:,}", ds.bounds()), c[0]
    )
    ui.chart("gan.d", t, lambda: gv.discriminator_figure(v, s), c[1])

    def optimal():
        dstar = None
        if ds.has_density and "x" in v:
            lp = truth_on(ds.name, tuple(sorted(ds.params().items())), tuple(v["bounds"]), len(v["x"]))
            xx, yy = np.meshgrid(v["x"], v["y"])
            lq = gv.kde_log_prob(np.stack([xx.ravel(), yy.ravel()], 1), s[:300]).reshape(lp.shape)
            dstar = gv.optimal_discriminator(lp, lq)
        return gv.optimal_figure(dstar, v.get("x"), v.get("y"), s, v.get("bounds"))

    ui.chart("gan.dstar", t, optimal, c[2])
    c = st.columns(3)
    ui.chart("gan.push", vt, lambda: gv.push_figure(v, data), c[0])
    ui.chart("gan.manifold", vt, lambda: gv.manifold_figure(v, data), c[1])
    ui.chart("gan.modes", t, lambda: gv.mode_histogram(s, ds.modes, ds.mode_std), c[2])
    c = st.columns(2)
    ui.chart("gan.value", vt, lambda: gv.value_jsd_figure(snap.losses, cfg.loss, v.get("jsd")), c[0])
    ui.chart("gan.jsd", vt, lambda: gv.jsd_figure({"JSD": v.get("jsd")}, v.get("jsd_floor")), c[1])
    c = st.columns(3)
    ui.chart("gan.coverage", vt, lambda: gv.coverage_figure(snap.metrics), c[0])
    ui.chart("gan.losses", vt, lambda: gv.loss_figure(snap.losses), c[1])
    norms = {"G": snap.losses["g_grad_norm"]} if "g_grad_norm" in snap.losses else {}
    ui.chart("gan.gnorm", vt, lambda: gv.grad_norm_figure(norms), c[2])


def damping():
    snaps = {label: runner.snapshot(i) for label, i in zip(pairs, ids)}
    c = st.columns(2)
    for k, (col, (label, sn)) in enumerate(zip(c, snaps.items())):
        with col:
            if ui.drawn(sn):
                ui.status(sn)
                title = f"{label}, step {sn.step:,}"
                ui.chart(
                    f"gan.osc.{k}",
                    sn.time,
                    lambda: density_figure(truth, sn.samples, title, ds.bounds()),
                )
    ok = {label: sn for label, sn in snaps.items() if sn and sn.samples is not None}
    jsd = {label: sn.views.get("jsd") for label, sn in ok.items()}
    floor = next((sn.views.get("jsd_floor") for sn in ok.values() if "jsd_floor" in sn.views), None)
    version = tuple(sn.views_time for sn in ok.values())
    c = st.columns(2)
    ui.chart("gan.osc.jsd", version, lambda: gv.jsd_figure(jsd, floor), c[0])
    ed = {label: sn.metrics["energy_distance"] for label, sn in ok.items() if "energy_distance" in sn.metrics}
    ui.chart("gan.osc.ed", version, lambda: curves(ed, "Energy distance to the data over training"), c[1])


job: gs.SeedsJob | None = st.session_state.get("gan.seeds_job")


@st.fragment(run_every=1.0 if job is not None and not job.done else None)
def seeds_progress():
    if job is None:
        st.info(
            "Pick how many seeds and press Run. The members train on the server's trainers, taking turns "
            "with live runs; the page stays usable and fills in seed by seed."
        )
        return
    s, sw = job.summary(), job.sweep
    st.caption(
        f"{s.total} seeds ({sw.seeds[0]}–{sw.seeds[-1]}) × {sw.max_steps:,} steps on {sw.data_name}; "
        f"settings: {', '.join(f'{k}={v[0]}' for k, v in sw.grid.items()) or 'the defaults'}."
    )
    if not job.done:
        left = f", about {s.left:.0f} s left" if s.left else ""
        st.progress(s.progress, text=f"{s.done}/{s.total} seeds done in {s.elapsed:.0f} s{left}")
    elif st.session_state.pop("gan.seeds_was_running", False):
        st.rerun()  # one full rerun so the buttons catch up
    st.session_state["gan.seeds_was_running"] = not job.done
    if job.error:
        st.error(f"The sweep stopped: {job.error}")
    c = st.columns([1, 3])
    if s.rate is not None:
        se = f" ± {100 * s.se:.0f} %" if s.se is not None else ""
        c[0].metric(
            "collapse rate",
            f"{100 * s.rate:.0f} %{se}",
            help="share of seeds that missed a mode ± its standard error",
        )
        c[0].caption(
            f"{s.collapsed} of {s.evaluated} seeds missed at least one mode; {s.diverged} diverged, {s.failed} failed."
        )
    else:
        c[0].caption(
            "The collapse rate needs a dataset with modes (8 or 25 Gaussians); the table has the rest."
        )
    c[1].dataframe(job.table(), hide_index=True, key="gan.seeds_table")
    fig = ui.cached_figure(
        "gan.seeds_clouds", (id(job), s.done), lambda: gv.seed_clouds_figure(job.results(), ds.bounds(), data)
    )
    st.plotly_chart(fig, key="gan.seeds_clouds")


def seeds():
    c = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    ui.linked("gan.seeds_n", 16, lo=gs.MIN_SEEDS, hi=gs.MAX_SEEDS)
    n = c[0].slider("seeds (from the sidebar's seed on)", gs.MIN_SEEDS, gs.MAX_SEEDS, 16, key="gan.seeds_n")
    ui.linked("gan.seeds_steps", 1500, lo=100, hi=10_000)
    steps = c[1].number_input("training steps per seed", 100, 10_000, 1500, 500, key="gan.seeds_steps")
    if c[2].button("Run", type="primary", key="gan.seeds_run", width="stretch"):
        if job is not None:
            job.cancel()
        sweep = gs.seeds_sweep(ds, cfg, list(range(seed, seed + n)), int(steps))
        st.session_state["gan.seeds_job"] = gs.SeedsJob(
            sweep, runner.pool, owner=gs.session_alive(runner)
        ).start()
        st.rerun()
    if c[3].button("Stop", key="gan.seeds_stop", width="stretch", disabled=job is None or job.done):
        job.cancel()
    seeds_progress()


if view_name == "training":
    ui.live(runner)(training)()  # wrapped here: the live view that runs takes the controls' state line
    with st.expander("DCGAN guidelines: batch norm and LeakyReLU, measured here", expanded=ui.lecture_mode()):
        st.markdown(DCGAN_LESSON)
elif view_name == "oscillations":
    st.markdown(dg.LESSON)
    c, dirac = st.columns(4), {}
    for col, (name, label, choices, default) in zip(c, DIRAC):
        ui.linked(f"gan.dirac_{name}", default, choices=choices)
        dirac[name] = col.select_slider(label, choices, default, key=f"gan.dirac_{name}")
    trs = dg.scenarios(**dirac)
    st.plotly_chart(gv.dirac_figure(trs), key="gan.dirac")
    st.plotly_chart(gv.dirac_distance_figure(trs), key="gan.dirac_distance")
    st.markdown(dg.LESSON_2D)
    ui.live(runner)(damping)()
if ids:
    ui.record_expander(runner, {i: i.split("/")[1] for i in ids}, ds.bounds(), "gan")
if view_name == "seeds":
    seeds()
ui.sync_url()
