"""GAN: the adversarial game live: D and the optimal D*, where G is pushed, its manifold, mode coverage, seeds."""

import dataclasses

import numpy as np
import streamlit as st

st.title("Generative adversarial network")  # before the heavy imports: the page paints while torch loads

from lab.gan import GAN  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import density_figure  # noqa: E402
from lab.viz import gan as gv  # noqa: E402
from pages import ui  # noqa: E402

MAIN = ["loss", "d_steps", "pack", "r1_gamma"]
MAX_SEEDS = 8

st.caption(
    "min_G max_D E log D(x) + E log(1 − D(G(z))). For a fixed G the best D is D* = p_data / (p_data + p_g); "
    "at the optimum p_g = p_data, D* = ½ everywhere and V = −log 4. Try minimax vs non-saturating, WGAN(-GP), "
    "and PacGAN packing (pack = 1 is plain D) on the 8 or 25 Gaussians, under several seeds. "
    "By default D pays an R1 penalty for slopes on the real data (r1_gamma = 0: none), and samples come "
    "from an EMA of G's weights (ema = 0: the raw G)."
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
    ui.linked("gan.n_seeds", 1, lo=1, hi=MAX_SEEDS)
    n_seeds = int(
        st.number_input("seeds (the same setup under seed, seed+1, ...)", 1, MAX_SEEDS, 1, key="gan.n_seeds")
    )

if ds is None:
    st.info("Choose a dataset, or upload a CSV with two numeric columns.")
    st.stop()

ids = [
    ui.ensure_run(
        runner, f"gan/seed{k}", RunSpec("gan", ds, cfg, seed=seed + k, max_seconds=budget), many=n_seeds > 2
    )
    for k in range(n_seeds)
]
for k in range(n_seeds, MAX_SEEDS):
    runner.remove(f"gan/seed{k}")
ui.controls(runner, ids, "gan")
truth = ui.truth_grid(ds)
data = ds.sample(1000, seed)


@st.cache_data(max_entries=16, show_spinner=False)
def truth_on(name: str, params: tuple, bounds: tuple, size: int) -> np.ndarray:
    """The true log-density on the views' grid (rows = y)."""
    gx, gy = np.linspace(bounds[0], bounds[1], size), np.linspace(bounds[2], bounds[3], size)
    xx, yy = np.meshgrid(gx, gy)
    return (
        ui._cached_dataset(name, params).log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(size, size)
    )


@ui.live(runner)
def view():
    snap = runner.snapshot(ids[0]) if ids and ids[0] else None
    if not ui.drawn(snap):
        return
    ui.status(snap)
    v, s = snap.views, snap.samples
    ui.metric_row(
        snap,
        [
            ("modes captured", "modes", ".0f"),
            ("high quality", "high_quality", ".1%"),
            ("energy distance", "energy_distance", ".4f"),
        ],
    )
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
            dstar = gv.optimal_discriminator(
                lp, gv.kde_log_prob(np.stack([xx.ravel(), yy.ravel()], 1), s[:300]).reshape(lp.shape)
            )
        return gv.optimal_figure(dstar, v.get("x"), v.get("y"), s, v.get("bounds"))

    ui.chart("gan.dstar", t, optimal, c[2])
    c = st.columns(3)
    ui.chart("gan.push", vt, lambda: gv.push_figure(v, data), c[0])
    ui.chart("gan.manifold", vt, lambda: gv.manifold_figure(v, data), c[1])
    ui.chart("gan.modes", t, lambda: gv.mode_histogram(s, ds.modes, ds.mode_std), c[2])
    c = st.columns(2)
    ui.chart("gan.coverage", vt, lambda: gv.coverage_figure(snap.metrics), c[0])
    ui.chart("gan.value", vt, lambda: gv.value_figure(snap.losses, v.get("loss", cfg.loss)), c[1])
    c = st.columns(2)
    ui.chart("gan.losses", vt, lambda: gv.loss_figure(snap.losses), c[0])
    snaps = {
        f"seed {seed + k}": s
        for k, i in enumerate(ids)
        if i and (s := runner.snapshot(i)) and s.samples is not None
    }
    norms = {name: sn.losses["g_grad_norm"] for name, sn in snaps.items() if "g_grad_norm" in sn.losses}
    ui.chart(
        "gan.gnorm", tuple(sn.views_time for sn in snaps.values()), lambda: gv.grad_norm_figure(norms), c[1]
    )
    if len(snaps) > 1:
        rows = [
            {
                "run": name,
                "step": sn.step,
                "modes": sn.latest_metrics.get("modes"),
                "high quality": sn.latest_metrics.get("high_quality"),
                "status": sn.status,
            }
            for name, sn in snaps.items()
        ]
        st.dataframe(rows, hide_index=True, key="gan.seeds")
        if ds.modes is not None:
            full = [r for r in rows if r["modes"] == len(ds.modes)]
            st.caption(
                f"{len(full)} of {len(rows)} seeds cover all {len(ds.modes)} modes (metrics every ~2 s while training)."
            )


view()
ui.sync_url()
