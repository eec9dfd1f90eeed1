"""Named lecture scenarios: a dataset, two or more runs (the failure and its contrast), a seed, a budget."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PresetRun:
    label: str
    model: str
    config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    lesson: str  # one paragraph, shown beside the panels
    data: str
    runs: tuple[PresetRun, ...]
    data_params: dict = field(default_factory=dict)
    seed: int = 0
    seconds: float = 40.0
    watch: str = ""  # the number that shows the lesson (a metric or loss name)
    # the settings the lesson is about: the runs differ in these and nothing else ("model" when the
    # contrast is between families), so a difference on screen can be credited to them
    varies: tuple[str, ...] = ()


# The GAN defaults before the R1 penalty: the GAN lessons (collapse, fixed by packing alone; saturation
# under a strong D) need a D without R1, which would itself keep the modes and soften D.
GAN_NO_R1 = {"r1_gamma": 0.0, "lr": 1e-3, "batch_size": 64, "hidden": 128}

PRESETS: dict[str, Preset] = {
    p.key: p
    for p in [
        Preset(
            key="gan-mode-collapse",
            title="GAN mode collapse on the ring, and PacGAN's fix",
            lesson=(
                "A plain GAN's generator is rewarded for any sample the discriminator believes, so it can "
                "settle on a few of the eight modes and hop between them while the discriminator chases it. "
                "PacGAN shows the discriminator packs of samples at once: a pack drawn from one mode looks "
                "nothing like a pack of real data, so collapse is penalised. Both runs are the same GAN "
                "(non-saturating loss, no R1, no weight averaging); only the pack size differs. Watch the "
                "modes captured."
            ),
            data="8gaussians",
            runs=(
                PresetRun("plain GAN (no packing)", "gan", {**GAN_NO_R1, "ema": 0.0, "pack": 1}),
                PresetRun("PacGAN (packs of 4)", "gan", {**GAN_NO_R1, "ema": 0.0, "pack": 4}),
            ),
            watch="modes",
            varies=("pack",),
        ),
        Preset(
            key="gan-vanishing-gradients",
            title="Minimax GAN's vanishing gradients against the non-saturating loss",
            lesson=(
                "With a strong discriminator (five D steps per G step) D(G(z)) is near 0, where "
                "log(1 - D(G(z))) is flat: the minimax generator gets almost no gradient. The non-saturating "
                "loss -log D(G(z)) is steep exactly there (Goodfellow et al. 2014). Compare the generator's "
                "gradient norm curves."
            ),
            data="8gaussians",
            runs=(
                PresetRun("minimax, k = 5", "gan", {**GAN_NO_R1, "loss": "minimax", "d_steps": 5, "pack": 1}),
                PresetRun(
                    "non-saturating, k = 5",
                    "gan",
                    {**GAN_NO_R1, "loss": "nonsaturating", "d_steps": 5, "pack": 1},
                ),
            ),
            watch="g_grad_norm",
            varies=("loss",),
        ),
        Preset(
            key="vae-posterior-collapse",
            title="VAE posterior collapse at large beta",
            lesson=(
                "The ELBO trades reconstruction against KL(Q(z|x) || P(z)). With beta = 8 the KL term wins: "
                "the encoder ignores x (Q(z|x) = P(z)), the KL term falls to zero and the decoder can only "
                "output one blurry average. Watch the KL term and the latent space."
            ),
            data="moons",
            runs=(
                PresetRun("beta = 1", "vae", {"beta": 1.0, "prior": "standard"}),
                PresetRun("beta = 8", "vae", {"beta": 8.0, "prior": "standard"}),
            ),
            watch="kl",
            varies=("beta",),
        ),
        Preset(
            key="vae-prior-holes",
            title="VAE samples from the prior's holes, and a learned prior",
            lesson=(
                "With P(z) = N(0, I) the codes of two moons do not fill the prior: between them the aggregate "
                "posterior has holes, and prior draws that land there decode between the moons, so the samples "
                "are blurry (the blur gap counts it in nats). A VampPrior, a mixture of the encoder's posteriors "
                "at learned pseudo-inputs, puts P(z) where the codes are. Watch the blur gap and the samples between the moons."
            ),
            data="moons",
            runs=(
                PresetRun("prior N(0, I)", "vae", {"prior": "standard"}),
                PresetRun("VampPrior", "vae", {"prior": "vamp"}),
            ),
            watch="blur_gap",
            varies=("prior",),
        ),
        Preset(
            key="flow-filament",
            title="An affine flow leaves filaments between separated modes",
            lesson=(
                "A flow is a continuous bijection of a Gaussian, so it cannot tear the plane: separated modes "
                "stay joined by thin filaments of density. Affine couplings bend the plane too little to thin "
                "them; rational-quadratic splines can. Compare the learned densities and the KL."
            ),
            data="8gaussians",
            runs=(
                PresetRun("affine coupling (RealNVP)", "flow", {"variant": "affine"}),
                PresetRun("spline coupling (NSF)", "flow", {"variant": "spline"}),
            ),
            watch="kl_to_truth",
            varies=("variant",),
        ),
        Preset(
            key="diffusion-few-steps",
            title="Diffusion sampled with too few reverse steps",
            lesson=(
                "The reverse process is a chain of Gaussian steps p(x_{t-1} | x_t), and a Gaussian is a good "
                "model of the true reverse step only when that step removes a little noise (Ho et al. 2020). "
                "The same model (linear schedule, T = 1000) is sampled by ancestral DDPM with 100 steps or "
                "with 10: each of the 10 steps has to undo ten times as much noise, and the samples blur off "
                "the moons. The linear schedule is rescaled with T, so x_T is Gaussian for every T; what "
                "matters is the size of each reverse step."
            ),
            data="moons",
            runs=(
                PresetRun(
                    "T = 1000, 10 reverse steps",
                    "ddpm",
                    {"schedule": "linear", "T": 1000, "sample_steps": 10},
                ),
                PresetRun(
                    "T = 1000, 100 reverse steps",
                    "ddpm",
                    {"schedule": "linear", "T": 1000, "sample_steps": 100},
                ),
            ),
            watch="energy_distance",
            varies=("sample_steps",),
        ),
        Preset(
            key="ar-ordering",
            title="Autoregressive ordering matters for a small model",
            lesson=(
                "p(x1) p(x2 | x1) and p(x2) p(x1 | x2) are the same density, but a small model can represent "
                "only one of them well. On the moons, a vertical line meets at most two arcs, so p(x2 | x1) "
                "has at most two modes and two Gaussians per conditional suffice; a horizontal line can meet "
                "four arc crossings, which two Gaussians cannot. Compare the KL of the two orders."
            ),
            data="moons",
            runs=(
                PresetRun(
                    "x1 first, 2 Gaussians per conditional", "ar", {"order": "x1-first", "components": 2}
                ),
                PresetRun(
                    "x2 first, 2 Gaussians per conditional", "ar", {"order": "x2-first", "components": 2}
                ),
            ),
            watch="kl_to_truth",
            varies=("order",),
        ),
        Preset(
            key="langevin-low-density",
            title="Plain Langevin fails in low-density regions; annealing fixes it",
            lesson=(
                "Denoising score matching at one small sigma learns the score only near the data: in the empty "
                "space between modes the estimate is wrong, and Langevin chains started there wander or "
                "stall, and mixing between modes gets the weights wrong. A ladder of noise levels (NCSN) "
                "learns the score everywhere at large sigma and refines it as sigma shrinks. Both find every "
                "mode; watch the energy distance (the modes' weights) and the high-quality share (samples "
                "stranded between modes)."
            ),
            data="25gaussians",
            runs=(
                PresetRun("one sigma, plain Langevin", "score", {"noise_levels": "single"}),
                PresetRun("annealed Langevin (NCSN)", "score", {"noise_levels": "annealed"}),
            ),
            watch="energy_distance",
            varies=("noise_levels",),
        ),
        Preset(
            key="fm-reflow",
            title="Flow matching: one Euler step works only after reflow",
            lesson=(
                "Flow matching learns the velocity of straight paths between noise and data, but with independent "
                "pairs the paths cross, so the learned flow (their average) is curved and one Euler step lands "
                "between the moons. Reflow (rectified flow) retrains on the model's own (noise, sample) pairs after "
                "1500 steps: those paths do not cross, the new flow is nearly straight, and one step is almost as "
                "good as many. Both panels sample with a single Euler step; watch the energy distance."
            ),
            data="moons",
            runs=(
                PresetRun(
                    "flow matching, 1 Euler step",
                    "fm",
                    {"reflow_every": 1500, "sampler": "euler", "steps": 1},
                ),
                PresetRun(
                    "after one reflow, 1 Euler step",
                    "fm",
                    {"reflow": 1, "reflow_every": 1500, "sampler": "euler", "steps": 1},
                ),
            ),
            watch="energy_distance",
            varies=("reflow",),
        ),
    ]
}


def get_preset(key: str) -> Preset:
    if key not in PRESETS:
        raise KeyError(f"there is no preset '{key}'; choose one of {', '.join(PRESETS)}")
    return PRESETS[key]


def varied_fields(preset: Preset) -> set[str]:
    """What a preset's runs differ in: "model" when they are of different families, else the names of the
    config fields (defaults filled in) that are not the same in every run. A preset's `varies` says it."""
    from lab.base import get_model_class, make_config

    if len({r.model for r in preset.runs}) > 1:
        return {"model"}
    configs = [make_config(get_model_class(r.model).Config, r.config) for r in preset.runs]
    first = configs[0]
    return {k for c in configs[1:] for k, v in vars(c).items() if v != getattr(first, k)}
