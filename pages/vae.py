"""Autoencoder and VAE live: latent codes, posteriors, aggregate vs prior, decoder manifold, reconstructions, ELBO split."""

import dataclasses

import streamlit as st

st.title(
    "Autoencoder and variational autoencoder"
)  # before the heavy imports: the page paints while torch loads

from lab.ae import Autoencoder  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.vae import VAE  # noqa: E402
from lab.viz import density_figure  # noqa: E402
from lab.viz import vae as vv  # noqa: E402
from pages import ui  # noqa: E402

VAE_MAIN = ["latent_dim", "beta", "prior", "decoder_variance", "decoder_std", "kl_warmup"]
MODES = ["VAE", "Autoencoder", "Side by side", "Decoder variance"]
VARIANCES = {  # the "Decoder variance" mode's three runs: the same VAE, three P(x|z) variances
    "fixed": "fixed σ: the MSE loss",
    "global": "one learned σ per dimension",
    "learned": "learned σ(z)",
}

st.caption(
    "An autoencoder learns a deterministic code z = f(x) and x̂ = g(z) under ‖x − x̂‖²: with a 1D code it traces a "
    "curve through the data, but decoding z from a Gaussian fitted to the codes is not a generative model. "
    "A VAE encodes Q(z|x) = N(μ, σ²), samples z = μ + σ ⊙ ε (the reparameterization trick) and maximises "
    "log P(x) ≥ E_Q[log P(x|z)] − β KL(Q(z|x) ‖ P(z)). Raise β to see the posterior collapse onto the prior. "
    "P(z) is the lecture's N(0, I) with prior = standard (see the holes in the aggregate posterior and the blur gap they cause), "
    "or by default a VampPrior learned from the codes. Blurry samples have two causes: prior holes (decoding z "
    "where no code lies), and a fixed decoder variance — the MSE loss — whose σ is not the data's noise "
    "(mode Decoder variance shows fixed, one learned σ and σ(z) side by side, measured)."
)
ui.url_notes()
ui.lecture_notes("ae", "vae")
runner = ui.get_runner()

with st.sidebar:
    ds = ui.dataset_picker("vae")
    mode = ui.url_default(
        "vae.mode",
        MODES[0],
        lambda raw: raw if raw in MODES else (_ for _ in ()).throw(ValueError("not a mode")),
    )
    mode = st.radio("model", MODES, index=MODES.index(mode), key="vae.mode", horizontal=True)
    st.markdown("**VAE**")
    main = ui.config_form(VAE.Config, "vae.vae", only=VAE_MAIN)
    # the live density grid (64 x 64 points) costs K decoder passes per point: K = 16 keeps it live
    # (about 0.04 nats looser than the default K = 256 on moons, see bench/vae.py)
    k_field = next(f for f in dataclasses.fields(VAE.Config) if f.name == "iwae_k")
    live_k = ui.field_widget(k_field, "vae.vae.live_k", 16, label="K importance samples (live bound)")
    with st.expander("VAE networks and optimiser"):
        rest = ui.config_form(VAE.Config, "vae.vae", skip=tuple(VAE_MAIN) + ("iwae_k",))
    vae_cfg = dataclasses.replace(rest, iwae_k=int(live_k), **{k: getattr(main, k) for k in VAE_MAIN})
    st.markdown("**Autoencoder**")
    ae_cfg = ui.config_form(Autoencoder.Config, "vae.ae", only=["latent_dim"])
    with st.expander("autoencoder networks and optimiser"):
        ae_rest = ui.config_form(Autoencoder.Config, "vae.ae", skip=("latent_dim",))
    ae_cfg = dataclasses.replace(ae_rest, latent_dim=ae_cfg.latent_dim)
    budget = ui.budget_widget("vae", 60.0)
    seed = ui.seed_widget("vae")
    ui.linked("vae.n_post", 5, lo=0, hi=12)
    n_post = st.slider("posterior ellipses (selected points)", 0, 12, 5, key="vae.n_post")

if ds is None:
    st.info("Choose a dataset, or upload a CSV with two numeric columns.")
    st.stop()

keys = {
    "VAE": ["vae"],
    "Autoencoder": ["ae"],
    "Side by side": ["ae", "vae"],
    "Decoder variance": [*VARIANCES],
}
keys = keys[mode]
cfgs = {"vae": vae_cfg, "ae": ae_cfg}
cfgs.update({v: dataclasses.replace(vae_cfg, decoder_variance=v) for v in VARIANCES})
ids = [
    ui.ensure_run(
        runner,
        f"vae/{k}",
        RunSpec("ae" if k == "ae" else "vae", ds, cfgs[k], seed=seed, max_seconds=budget),
        many=len(keys) > 2,
    )
    for k in keys
]
for k in cfgs:
    if k not in keys:
        runner.remove(f"vae/{k}")
ui.controls(runner, ids, "vae")
data = ds.sample(1000, seed)
bounds = ds.bounds()


def panels(
    snap, slots: list, tag: str, which=("samples", "latent", "aggregate", "manifold", "recon", "elbo")
):
    """The pictures of one model (all six, or `which`) into as many containers."""
    v, m = snap.views, snap.latest_metrics
    sel = vv.spread_indices(len(v["codes"]), n_post) if "codes" in v else None
    title = f"{snap.title}, step {snap.step:,}"

    def samples():
        if snap.density is not None:
            gap = m.get("blur_gap")
            extra = f" · blur gap {gap:.2f}" if gap is not None else ""
            return density_figure(
                snap.density, snap.samples, f"{title}: IWAE bound, samples{extra}", bounds, data
            )
        return vv.samples_blur_figure(
            snap.samples, data, bounds, m.get("blur_gap"), f"{title}: decoded Gaussian codes"
        )

    t, vt = snap.time, (snap.views_time, n_post)  # figures are rebuilt when what they show changes
    build = {
        "samples": (t, samples),
        "latent": (vt, lambda: vv.latent_figure(v, bounds, sel)),
        "aggregate": (vt, lambda: vv.aggregate_figure(v)),
        "manifold": (vt, lambda: vv.manifold_figure(v, bounds, data)),
        "recon": (vt, lambda: vv.reconstruction_figure(v, bounds, sel)),
        "elbo": (vt, lambda: vv.elbo_figure(snap.losses)),
    }
    for name, slot in zip(which, slots):
        ui.chart(f"vae.{tag}.{name}", build[name][0], build[name][1], slot)


@ui.live(runner)
def view():
    snaps = {k: runner.snapshot(i) for k, i in zip(keys, ids) if i and runner.snapshot(i)}
    waiting = [s for s in snaps.values() if s.samples is None]
    if waiting:  # building (or a failed build's sentence)
        for s in waiting:
            ui.drawn(s)
        return
    if len(snaps) == 1:
        ((k, snap),) = snaps.items()
        ui.status(snap)
        ui.metric_row(
            snap,
            [
                ("blur gap (nats)", "blur_gap", ".2f"),
                ("KL to truth (IWAE)", "kl_to_truth", ".3f"),
                ("energy distance", "energy_distance", ".4f"),
            ],
        )
        top, bottom = st.columns(3), st.columns(3)
        panels(snap, list(top) + list(bottom), k)
        return
    cols = st.columns(len(snaps))
    for col, (k, snap) in zip(cols, snaps.items()):
        with col:
            if k in VARIANCES:
                st.markdown(f"**{VARIANCES[k]}**")
                st.caption(
                    f"σ = {vae_cfg.decoder_std:g} (standardised units)"
                    if k == "fixed"
                    else f"σ starts at {vae_cfg.decoder_std:g} and is learned"
                    if k == "global"
                    else "σ(z) output by the decoder"
                )
            ui.status(snap)
            ui.metric_row(
                snap, [("blur gap (nats)", "blur_gap", ".2f"), ("energy distance", "energy_distance", ".4f")]
            )
        if k in VARIANCES:  # three runs: the pictures that differ between the variances
            panels(snap, [col] * 3, k, ("samples", "recon", "elbo"))
        else:
            panels(snap, [col] * 6, k)
    if mode == "Decoder variance":
        st.caption(
            "The same VAE, seed and data with three P(x|z) = N(g(z), σ²). A fixed σ makes −log P(x|z) the "
            "MSE ‖x − g(z)‖² / 2σ² (plus a constant): samples carry that σ's noise whatever the data's is, and a "
            "σ that is too large weakens the reconstruction term against the KL, so g(z) averages neighbouring "
            "points (set decoder std to 1 to see it). Learning σ (one per dimension, or σ(z)) lets the likelihood "
            "find the data's own noise. The other cause, prior holes, is the prior setting (standard vs vamp)."
        )


view()
ui.record_expander(runner, {i: i.split("/")[1] for i in ids if i}, bounds, "vae")
with st.expander("Why a bound: the marginal, the ELBO gap, and the three challenges"):
    st.markdown(
        "**Representation.** A latent-variable model defines the data density as the marginal "
        "p(x) = ∫ p(x|z) p(z) dz: a simple prior p(z) pushed through a decoder p(x|z) = N(g(z), σ²). "
        "**Learning by maximum likelihood** wants log p(x), but with a neural g the integral is intractable: it has no closed "
        "form, and estimating it by sampling z ~ p(z) needs ever more samples as z's dimension grows (almost "
        "every z decodes far from a given x). **Inference** — p(z|x) = p(x|z) p(z) / p(x) — needs that same "
        "integral. The VAE answers both with an encoder Q(z|x): log p(x) = ELBO + KL(Q(z|x) ‖ p(z|x)), so "
        "the ELBO is a lower bound and the gap log p(x) − ELBO is exactly how far Q is from the true "
        "posterior. The ELBO panel draws it: −log p(x) estimated by the importance-weighted bound (IWAE, "
        "K = 64 samples of Q) on fixed training points, and the shaded band up to the −ELBO on those points."
    )
ui.sync_url()
