"""Diffusion and score models live: the forward process scrubbed in t, reverse paths, score fields, samplers timed."""

import dataclasses

import streamlit as st

st.title("Diffusion and score-based models")  # before the heavy imports: the page paints while torch loads

from lab.diffusion import DDPM  # noqa: E402
from lab.live.session import JobError  # noqa: E402
from lab.metrics import energy_distance_floor  # noqa: E402
from lab.score import ScoreModel  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import density_figure  # noqa: E402
from lab.viz import diffusion as dv  # noqa: E402
from pages import family_page as fp  # noqa: E402
from pages import ui  # noqa: E402

MODELS = {"ddpm": DDPM, "score": ScoreModel}
MAIN = {
    "ddpm": ["schedule", "T", "prediction"],
    "score": ["noise_levels", "n_levels", "steps_per_level", "step_size"],
}
SAMPLING = ["sampler", "sample_steps", "eta"]  # sampling only: changed in "compare samplers", never a retrain


def _model_key(raw: str) -> str:
    if raw not in MODELS:
        raise ValueError(f"there is no model '{raw}' here")
    return raw


st.caption(
    "Forward: x₀ → x₁ → … → x_T ≈ N(0, I), q(x_t | x₀) = N(√ᾱ_t x₀, (1 − ᾱ_t) I). A network ε_θ(x_t, t) learns the "
    "noise; sampling runs the chain backwards (DDPM), or deterministically in fewer steps (DDIM). The score view "
    "(NCSN) learns ∇ₓ log p_σ for a ladder of σ and samples by annealed Langevin; one small σ alone shows why "
    "plain Langevin fails in the low-density space between modes. Good samples, slow sampling: measured below."
)
ui.url_notes()
ui.lecture_notes("ddpm", "score")
runner = ui.get_runner()

with st.sidebar:
    ds = ui.dataset_picker("diffusion", default="moons")
    st.session_state.setdefault("diffusion.model", ui.url_default("diffusion.model", "ddpm", _model_key))
    key = st.radio(
        "model",
        list(MODELS),
        key="diffusion.model",
        horizontal=True,
        format_func=lambda k: "DDPM / DDIM" if k == "ddpm" else "Score (NCSN)",
    )
    cls = MODELS[key]
    groups = [MAIN[key]] + ([fp.GUIDANCE] if key == "ddpm" else [])  # the score model has no labels
    forms = [ui.config_form(cls.Config, f"diffusion.{key}", only=g) for g in groups]
    with st.expander("network and optimiser"):
        rest = ui.config_form(
            cls.Config, f"diffusion.{key}", skip=tuple(SAMPLING + [f for g in groups for f in g])
        )
    cfg = dataclasses.replace(rest, **{k: getattr(f, k) for g, f in zip(groups, forms) for k in g})
    if getattr(cfg, "conditional", False) is True:
        ds = fp.labelled_upload("diffusion") or ds
    budget = ui.budget_widget("diffusion", 60.0)
    seed = ui.seed_widget("diffusion")

fp.need_data(ds)

rid = ui.ensure_run(runner, f"diffusion/{key}", RunSpec(key, ds, cfg, seed=seed, max_seconds=budget))
ui.controls(runner, [rid], "diffusion")
truth = ui.truth_grid(ds)
data = ds.sample(1000, seed)
c = st.columns(2)
ui.linked("diffusion.t", 20, lo=0, hi=100)
frame = c[0].slider(
    "forward process: t / T (σ up the ladder for the score model)", 0, 100, 20, 5, key="diffusion.t"
)
ui.linked("diffusion.level", 1, choices=list(range(5)))
level = c[1].select_slider(
    "score field: noise level (small → large)", list(range(5)), 1, key="diffusion.level"
)


@ui.live(runner)
def view():
    snap = runner.snapshot(rid) if rid else None
    if not ui.drawn(snap):
        return
    ui.status(snap)
    v, s = snap.views, snap.samples
    ui.metric_row(
        snap,
        [
            ("energy distance", "energy_distance", ".4f"),
            ("floor", "energy_distance_floor", ".4f"),
            ("blur gap (nats)", "blur_gap", ".3f"),
            ("modes", "modes", "d"),
            ("high quality", "high_quality", ".1%"),
        ],
    )
    t, vt = snap.time, snap.views_time  # figures are rebuilt when what they show changes
    c = st.columns(2)
    ui.chart(
        "diffusion.samples",
        t,
        lambda: density_figure(truth, s, f"Samples, step {snap.step:,}", ds.bounds()),
        c[0],
    )
    ui.chart("diffusion.paths", vt, lambda: dv.trajectories_figure(v, ds.bounds(), data), c[1])
    c = st.columns(2)
    n_frames = len(v["forward"]["points"])
    i_frame = round(frame / 100 * (n_frames - 1))
    ui.chart("diffusion.forward", (vt, i_frame), lambda: dv.forward_figure(v, i_frame, ds.bounds()), c[0])
    ui.chart("diffusion.prior", vt, lambda: dv.prior_figure(v), c[1])
    c = st.columns(3)
    ui.chart(
        "diffusion.score_model", (vt, level), lambda: dv.score_field_figure(v, level, "model", data), c[0]
    )
    ui.chart("diffusion.score_true", (vt, level), lambda: dv.score_field_figure(v, level, "true", data), c[1])
    ui.chart("diffusion.score_error", (vt, level), lambda: dv.score_error_figure(v, level, data), c[2])
    fp.loss_curve("diffusion", snap, "loss", "Training loss", log_y=True)
    fp.guidance("diffusion", snap, cfg, ds, data)


view()
ui.record_expander(runner, {rid: key}, ds.bounds(), "diffusion")

if key == "ddpm" and rid:
    st.subheader("Quality against the number of sampling steps")
    st.caption(
        "Ancestral DDPM against deterministic DDIM (η = 0) on the current weights: energy distance of 500 "
        "samples to fresh data, and the seconds each took. Runs once per press (a few seconds)."
    )
    if st.button("compare samplers", key="diffusion.sweep"):
        with st.spinner("sampling…"):  # in the run's worker, between its training steps
            try:
                st.session_state["diffusion.sweep_result"] = (
                    runner.call(
                        rid,
                        "sampler_sweep",
                        reference=ds.sample(500, seed + 99),
                        steps=[5, 10, 20, 50, 100, 250, 1000],
                        n=500,
                        seed=seed,
                    ),
                    energy_distance_floor(ds, 500, seed) if ds.has_density else None,
                )
            except JobError as e:
                st.error(f"The sampler comparison could not run: {e}")
    sweep, floor = st.session_state.get("diffusion.sweep_result", (None, None))
    ui.live_chart(dv.steps_figure(sweep, floor), key="diffusion.steps")

ui.sync_url()
