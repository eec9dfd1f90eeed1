"""The lecture as a tour: its sections in order, one live scenario per step, each step's lesson a checkable claim.

Typed data and small numpy functions only (no torch): the Lecture page reads it before the workers have
imported anything, and the tests check the lessons on synthetic histories. A step's scenario is a
`lab.presets.Preset` (a preset of the Compare page where one fits); its `Lesson` is what
`bench/lecture.py` measures over seeds and what the page checks live on the runs' histories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from lab.presets import GAN_NO_R1, PRESETS, Preset, PresetRun
from lab.snapshot import Series, Snapshot

History = Mapping[str, Series]  # one run's losses and metrics by name, as a Snapshot carries them

# The lecture's sections, in its order: (key, title).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("discriminative", "Generative vs discriminative"),
    ("tasks", "Density estimation vs sample generation"),
    ("why", "Why study generative models"),
    ("latent", "Latent variable models"),
    ("ae", "Autoencoders"),
    ("vae", "Variational autoencoders"),
    ("gan", "Generative adversarial networks"),
    ("flow", "Normalizing flows"),
    ("diffusion", "Diffusion and score-based models"),
    ("table", "The comparison table"),
    ("ar", "Autoregressive models"),
)
SECTION_TITLES = dict(SECTIONS)

# ---------------------------------------------------------------------------------------------
# Numbers from histories
# ---------------------------------------------------------------------------------------------

AGGREGATES = {
    "tail": "mean of the last fifth",
    "last": "last value",
    "mean": "mean over training",
    "spread": "std over the last half",
}


def _gap(h: History, a: str, b: str) -> Series | None:
    """a - b at b's steps, a (a noisy per-batch loss) averaged over the steps since b's previous point."""
    if a not in h or b not in h or not len(h[b][0]) or not len(h[a][0]):
        return None
    sa, va = (np.asarray(v, float) for v in h[a])
    sb, vb = (np.asarray(v, float) for v in h[b])
    out_s, out_v, prev = [], [], -math.inf
    for s, v in zip(sb, vb):
        window = (sa > prev) & (sa <= s)
        if window.any():
            out_s.append(s)
            out_v.append(float(va[window].mean()) - v)
        prev = s
    return np.array(out_s), np.array(out_v)


# Series computed from others: name -> (how, what it means). The page draws them like any other.
DERIVED = {
    # log p(x) - ELBO: the VAE's training ELBO (its -neg_elbo, data coordinates) against the importance
    # weighted estimate of log p(x) with K = 256 on fresh true points (-test_nll): the bound's gap
    "elbo_gap": (lambda h: _gap(h, "neg_elbo", "test_nll"), "log p(x) - ELBO (nats)"),
}


def series(h: History, name: str) -> Series | None:
    """A run's series by name: a loss, a metric, `sample_ms` (ms per 1000 samples) or a DERIVED one."""
    if name in DERIVED:
        return DERIVED[name][0](h)
    s = h.get(name)
    if s is None or not len(s[0]):
        return None
    return np.asarray(s[0]), np.asarray(s[1], dtype=float)


def aggregate(h: History, name: str, agg: str = "tail") -> float:
    """One number from a run's series (nan when the run has no such series yet)."""
    s = series(h, name)
    if s is None:
        return math.nan
    v = s[1][np.isfinite(s[1])]
    if not len(v):
        return math.nan
    if agg == "last":
        return float(v[-1])
    if agg == "mean":
        return float(v.mean())
    if agg == "spread":
        return float(v[len(v) // 2 :].std()) if len(v) >= 4 else math.nan
    return float(v[-max(1, len(v) // 5) :].mean())


def history(snap: Snapshot | None) -> dict[str, Series]:
    """A live run's history as the lessons read it: its losses, its metrics and its sampling time."""
    if snap is None:
        return {}
    h: dict[str, Series] = {**snap.losses, **snap.metrics}
    if snap.sample_seconds_per_1000 is not None:
        h["sample_ms"] = (np.array([snap.step]), np.array([1000 * snap.sample_seconds_per_1000]))
    return h


# ---------------------------------------------------------------------------------------------
# Lessons: claims about the runs' histories that can fail
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One number of one run: series `name` of run `run` (its index in the scenario), aggregated."""

    run: int
    name: str
    agg: str = "tail"


@dataclass(frozen=True)
class Compare:
    """left op factor * right + margin, right another run's number or a constant."""

    left: Measure
    op: str  # "<" or ">"
    right: Measure | float
    factor: float = 1.0
    margin: float = 0.0


@dataclass(frozen=True)
class Within:
    """|measure - centre| < tolerance: a number that settles at a known value (V(D, G) at -log 4)."""

    measure: Measure
    centre: float
    tolerance: float


@dataclass(frozen=True)
class Absent:
    """The run has no such series: a family without a density reports no test NLL."""

    run: int
    name: str


@dataclass(frozen=True)
class Present:
    """The run reports a finite value of the series: a family with a density has a test NLL."""

    run: int
    name: str


Check = Compare | Within | Absent | Present


@dataclass(frozen=True)
class Verdict:
    passed: bool
    numbers: dict[str, float]  # the measured numbers the checks compared, named by run label and series
    failed: str = ""  # the first check that failed, in words ("" when every check passed)


@dataclass(frozen=True)
class Lesson:
    """A claim ("the non-saturating loss keeps G's gradient above minimax's") and the checks that make it."""

    claim: str
    checks: tuple[Check, ...]

    def check(self, histories: Sequence[History], labels: Sequence[str]) -> Verdict:
        numbers: dict[str, float] = {}
        failed = ""

        def take(m: Measure) -> float:
            v = aggregate(histories[m.run], m.name, m.agg) if m.run < len(histories) else math.nan
            numbers[f"{labels[m.run]}: {m.name} ({m.agg})"] = v
            return v

        for c in self.checks:
            if isinstance(c, Absent):
                have = c.run < len(histories) and series(histories[c.run], c.name) is not None
                ok, said = not have, f"{labels[c.run]} has no {c.name}"
            elif isinstance(c, Present):
                v = take(Measure(c.run, c.name, "last"))
                ok, said = math.isfinite(v), f"{labels[c.run]} reports {c.name}: {v:.4g}"
            elif isinstance(c, Within):
                a = take(c.measure)
                ok = abs(a - c.centre) < c.tolerance
                said = f"{labels[c.measure.run]}: {c.measure.name} {a:.4g} within {c.tolerance:g} of {c.centre:.4g}"
            else:
                a = take(c.left)
                b = take(c.right) if isinstance(c.right, Measure) else float(c.right)
                bound = c.factor * b + c.margin
                ok = math.isfinite(a) and math.isfinite(bound) and (a < bound if c.op == "<" else a > bound)
                said = f"{labels[c.left.run]}: {c.left.name} {a:.4g} {c.op} {bound:.4g}"
            if not ok and not failed:
                failed = said if "nan" not in said else f"not measured yet ({said})"
        return Verdict(not failed, numbers, failed)


# ---------------------------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One stop of the tour: a live scenario, its takeaway, its formula and the number to watch."""

    key: str  # in the link: ?tour=key
    section: str  # a key of SECTIONS
    scenario: Preset  # dataset, runs with their settings, seed, budget; watch = the series drawn large
    takeaway: str  # two sentences
    formula: str  # LaTeX
    lesson: Lesson
    notes: str = ""  # what else the lecture names here (the three challenges, forward vs inverse problem)
    page: str = ""  # the family page with the deeper view (pages/gan.py)
    bench_steps: int = 500  # training steps per run in bench/lecture.py
    extra: tuple[tuple[str, str], ...] = ()  # more (text, LaTeX) for the step
    line: dict = field(default_factory=dict)  # a reference line on the watched curve: hline, hline_label
    topics: tuple[str, ...] = ()  # lab.lectures.NOTES shown with the step, before those of its families

    @property
    def title(self) -> str:
        return self.scenario.title

    @property
    def note_keys(self) -> list[str]:
        """The lecture's notes (lab/lectures.py) for this step: its topics, then its runs' families."""
        from lab.lectures import NOTES

        keys = [*self.topics, *(r.model for r in self.scenario.runs)]
        return [k for k in dict.fromkeys(keys) if k in NOTES]

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.scenario.runs]

    def check(self, histories: Sequence[History]) -> Verdict:
        return self.lesson.check(histories, self.labels)


def _preset(key: str, **changes) -> Preset:
    """A Compare preset as a step's scenario (the same runs; a shorter budget for a lecture)."""
    from dataclasses import replace

    return replace(PRESETS[key], **changes)


def _scenario(key, title, data, runs, watch, varies, seconds=20.0, seed=0, lesson="") -> Preset:
    return Preset(
        key=key,
        title=title,
        lesson=lesson,
        data=data,
        runs=tuple(PresetRun(*r) for r in runs),
        seed=seed,
        seconds=seconds,
        watch=watch,
        varies=varies,
    )


M = Measure
LOG4 = math.log(4.0)

STEPS: tuple[Step, ...] = (
    Step(
        key="generative-vs-discriminative",
        section="discriminative",
        scenario=_scenario(
            "generative-vs-discriminative",
            "A generative model learns p(x) itself",
            "moons",
            [("Gaussian mixture of p(x)", "gmm", {})],
            "kl_to_truth",
            (),
        ),
        takeaway=(
            "A discriminative model learns P(y | x), the boundary between classes, and nothing about where "
            "x itself lies; a generative model learns p(x) (or p(x | y) per class), so it can sample new x, "
            "score how typical an x is, and classify by Bayes' rule. Here a mixture learns p(x) of the moons: "
            "its KL to the true density falls to a few hundredths of a nat."
        ),
        formula=r"\text{discriminative: } P(y \mid x) \qquad \text{generative: } p(x, y) = p(x \mid y)\,P(y),"
        r"\quad P(y \mid x) = \frac{p(x \mid y) P(y)}{\sum_{y'} p(x \mid y') P(y')}",
        lesson=Lesson(
            "The mixture's KL to the true p(x) falls below 0.15 nats.",
            (Compare(M(0, "kl_to_truth", "last"), "<", 0.15),),
        ),
        page="pages/classifiers.py",
        bench_steps=40,
    ),
    Step(
        key="density-vs-sampling",
        section="tasks",
        scenario=_scenario(
            "density-vs-sampling",
            "Density estimation (a flow) vs sample generation (a GAN)",
            "moons",
            [("flow: exact log p(x)", "flow", {}), ("GAN: samples only", "gan", {})],
            "energy_distance",
            ("model",),
        ),
        takeaway=(
            "Density estimation learns a p(x) that can be evaluated at any point; sample generation only "
            "learns to draw new points. The flow reports a test NLL and a KL to the truth, the GAN none, "
            "yet both samples land on the moons: watch their energy distances fall toward the noise floor."
        ),
        formula=r"\text{density estimation: } x \mapsto p_\theta(x) \qquad "
        r"\text{sample generation: } z \sim p(z),\ x = G_\theta(z)",
        notes=(
            "The lecture's three challenges show here. Representation: which family of p_θ (an invertible "
            "map, a generator network). Learning: the flow maximises the likelihood, the GAN cannot (it has "
            "none) and plays a game instead. Inference: questions asked of the model (how likely is x, "
            "which z made x) are answered by the flow at once and by the GAN not at all."
        ),
        lesson=Lesson(
            "The flow has a density (KL < 0.2 nats), the GAN has none, and both sample within 5x the "
            "energy distance's noise floor.",
            (
                Compare(M(0, "kl_to_truth", "last"), "<", 0.2),
                Absent(1, "test_nll"),
                Compare(M(0, "energy_distance", "last"), "<", M(0, "energy_distance_floor", "last"), 5.0),
                Compare(M(1, "energy_distance", "last"), "<", M(1, "energy_distance_floor", "last"), 5.0),
            ),
        ),
        page="pages/flows.py",
        topics=("challenges",),
        bench_steps=600,
    ),
    Step(
        key="why-missing-data",
        section="why",
        scenario=_scenario(
            "why-missing-data",
            "Why a density: fill in a missing coordinate",
            "moons",
            [
                ("p(x1) p(x2 | x1)", "ar", {"order": "x1-first"}),
                ("p(x2) p(x1 | x2)", "ar", {"order": "x2-first"}),
            ],
            "nll_second",
            ("order",),
        ),
        takeaway=(
            "A model of p(x) answers questions nobody trained it for: a point missing x2 is completed from "
            "p(x2 | x1), a latent code is inferred from p(z | x), an inverse problem (find x from a "
            "measurement y = A x + noise) is solved by p(x | y) ∝ p(y | x) p(x). Here knowing x1 makes x2 "
            "far easier to predict: −log p(x2 | x1) ends well below −log p(x2)."
        ),
        formula=r"p(x_2 \mid x_1) = \frac{p(x_1, x_2)}{\int p(x_1, x_2')\, dx_2'}, \qquad "
        r"p(x \mid y) \propto p(y \mid x)\, p(x)",
        notes=(
            "Forward problem: from x, compute the measurement y = A(x) (easy, one answer). Inverse problem: "
            "from y, recover x (many x fit; the prior p(x) picks the likely ones). That is inference, the "
            "third of the lecture's challenges. The Inverse problems page solves them with every family."
        ),
        lesson=Lesson(
            "Observing x1 lowers the NLL of x2 by more than 0.3 nats: −log p(x2 | x1) < −log p(x2) − 0.3.",
            (Compare(M(0, "nll_second"), "<", M(1, "nll_first"), 1.0, -0.3),),
        ),
        page="pages/inverse.py",
        topics=("inverse",),
        bench_steps=300,
    ),
    Step(
        key="latent-variables",
        section="latent",
        scenario=_scenario(
            "latent-variables",
            "A latent variable makes simple parts expressive",
            "moons",
            [
                ("one Gaussian (no latent)", "gmm", {"n_components": 1, "bic": False}),
                ("12 Gaussians: z picks one", "gmm", {"n_components": 12, "bic": False}),
            ],
            "kl_to_truth",
            ("n_components",),
        ),
        takeaway=(
            "A latent variable model writes p(x) as the marginal of a simple p(x | z) over a prior p(z): one "
            "Gaussian cannot hold two moons, but a Gaussian per value of a discrete z can. With a discrete z "
            "the integral is a sum EM maximises exactly; with a continuous z and a neural p(x | z) (the VAE) "
            "it has no closed form, and the posterior p(z | x) neither, so the model trains a bound."
        ),
        formula=r"p(x) = \int p(x \mid z)\, p(z)\, dz \;\; \xrightarrow{\ z \in \{1..K\}\ } \;\; "
        r"\sum_{k=1}^{K} \pi_k\, \mathcal{N}(x; \mu_k, \Sigma_k)",
        extra=(
            (
                "Why the continuous case is intractable: the integral runs over all of z-space, through a "
                "neural network, for every single x (and so does the posterior's normaliser):",
                r"p(z \mid x) = \frac{p(x \mid z)\, p(z)}{\int p(x \mid z')\, p(z')\, dz'}",
            ),
        ),
        lesson=Lesson(
            "The mixture's KL to the truth is at least 0.3 nats below the single Gaussian's.",
            (Compare(M(1, "kl_to_truth", "last"), "<", M(0, "kl_to_truth", "last"), 1.0, -0.3),),
        ),
        page="pages/datasets.py",
        topics=("gmm", "vae"),
        bench_steps=40,
    ),
    Step(
        key="autoencoder",
        section="ae",
        scenario=_scenario(
            "autoencoder",
            "An autoencoder compresses, but it is not a generative model",
            "moons",
            [("autoencoder", "ae", {}), ("VAE", "vae", {})],
            "blur_gap",
            ("model",),
        ),
        takeaway=(
            "An autoencoder learns a code z = f(x) and a decoder back, trained to reconstruct; nothing says "
            "which codes are valid, so it has no p(x), and decoding new codes (here from a Gaussian fitted "
            "to the codes) lands off the data. The VAE adds a prior and a bound on the density: its samples "
            "sit on the moons, the autoencoder's between them (watch the blur gap)."
        ),
        formula=r"z = f_\phi(x),\quad \hat x = g_\theta(z),\quad "
        r"\mathcal{L} = \lVert x - g_\theta(f_\phi(x)) \rVert^2",
        lesson=Lesson(
            "The AE has no density, and its samples' blur gap is larger than the VAE's.",
            (Absent(0, "test_nll"), Compare(M(0, "blur_gap", "last"), ">", M(1, "blur_gap", "last"))),
        ),
        page="pages/vae.py",
        bench_steps=500,
    ),
    Step(
        key="vae-elbo",
        section="vae",
        scenario=_scenario(
            "vae-elbo",
            "The VAE's ELBO: reconstruction, KL, and the gap to log p(x)",
            "moons",
            [("VAE trained on the ELBO", "vae", {"objective": "elbo", "prior": "standard"})],
            "elbo_gap",
            (),
        ),
        takeaway=(
            "The VAE maximises the ELBO, a reconstruction term minus KL(Q(z|x) ‖ P(z)), sampling z by "
            "reparameterization so the gradient flows through the sample. The ELBO is a lower bound: its gap "
            "to log p(x) is KL(Q(z|x) ‖ P(z|x)), drawn here as the importance-weighted log p(x) minus the ELBO."
        ),
        formula=r"\log P(x) = \underbrace{\mathbb{E}_{Q(z|x)}[\log P(x|z)] - "
        r"\mathrm{KL}\big(Q(z|x)\,\|\,P(z)\big)}_{\mathrm{ELBO}} + "
        r"\underbrace{\mathrm{KL}\big(Q(z|x)\,\|\,P(z|x)\big)}_{\text{gap} \,\ge\, 0}",
        extra=(
            (
                "Reparameterization: the sample is a differentiable function of the encoder's outputs,",
                r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \varepsilon,\quad \varepsilon \sim \mathcal{N}(0, I)",
            ),
        ),
        lesson=Lesson(
            "The gap log p(x) − ELBO stays positive (above 0.01 nats) while the VAE trains.",
            (Compare(M(0, "elbo_gap"), ">", 0.01),),
        ),
        page="pages/vae.py",
        bench_steps=600,
    ),
    Step(
        key="vae-posterior-collapse",
        section="vae",
        scenario=_preset("vae-posterior-collapse", seconds=20.0),
        takeaway=(
            "β weighs the KL term of the ELBO: at β = 8 matching the prior is worth more than reconstructing "
            "x, so Q(z|x) becomes P(z) for every x and the code carries nothing. Watch the KL term of "
            "β = 8 fall to zero while β = 1 keeps it up."
        ),
        formula=r"\mathcal{L}_\beta = \mathbb{E}_{Q(z|x)}[\log P(x|z)] - \beta\, "
        r"\mathrm{KL}\big(Q(z|x)\,\|\,P(z)\big)",
        lesson=Lesson(
            "At β = 8 the KL term ends below a quarter of its value at β = 1.",
            (Compare(M(1, "kl"), "<", M(0, "kl"), 0.25),),
        ),
        page="pages/vae.py",
        bench_steps=500,
    ),
    Step(
        key="gan-minimax",
        section="gan",
        scenario=_scenario(
            "gan-minimax",
            "The GAN game: D* and the value −log 4",
            "8gaussians",
            [("GAN (non-saturating, R1)", "gan", {})],
            "value",
            (),
        ),
        takeaway=(
            "G and D play a minimax game; for a fixed G the best D is D* = p_data / (p_data + p_g), and "
            "then the value is −log 4 + 2 JSD(p_data ‖ p_g). As G learns the eight modes D can no longer "
            "tell real from fake: watch V(D, G) settle near −log 4 ≈ −1.386, where the JSD is zero."
        ),
        formula=r"\min_G \max_D V = \mathbb{E}_{p_{data}}[\log D(x)] + \mathbb{E}_{z}[\log(1 - D(G(z)))],"
        r"\quad V(D^*, G) = -\log 4 + 2\,\mathrm{JSD}(p_{data} \,\|\, p_g)",
        extra=(("The optimal discriminator:", r"D^*(x) = \frac{p_{data}(x)}{p_{data}(x) + p_g(x)}"),),
        line={"hline": -LOG4, "hline_label": "−log 4"},
        lesson=Lesson(
            "V(D, G) ends within 0.25 of −log 4.",
            (Within(M(0, "value"), -LOG4, 0.25),),
        ),
        page="pages/gan.py",
        bench_steps=800,
    ),
    Step(
        key="gan-mode-collapse",
        section="gan",
        scenario=_preset("gan-mode-collapse", seconds=30.0),
        takeaway=(
            "A generator is rewarded for any sample D believes, so it can settle on a few modes and hop "
            "between them (mode collapse). PacGAN lets D judge packs of samples, and a pack from one mode "
            "looks nothing like a pack of real data: watch the modes covered."
        ),
        formula=r"D\big(x^{(1)}, \dots, x^{(m)}\big),\quad x^{(i)} \sim p_{data} \text{ or all } "
        r"x^{(i)} = G(z^{(i)})",
        lesson=Lesson(
            "PacGAN covers more of the eight modes than the same GAN without packing.",
            (Compare(M(1, "modes", "tail"), ">", M(0, "modes", "tail")),),
        ),
        page="pages/gan.py",
        bench_steps=1000,
    ),
    Step(
        key="gan-oscillation",
        section="gan",
        scenario=_scenario(
            "gan-oscillation",
            "GAN oscillations, and the R1 penalty that damps them",
            "8gaussians",
            [
                ("no damping", "gan", {**GAN_NO_R1, "r1_gamma": 0.0}),
                ("R1 penalty, gamma = 1", "gan", {**GAN_NO_R1, "r1_gamma": 1.0}),
            ],
            "d_loss",
            ("r1_gamma",),
        ),
        takeaway=(
            "Gradient descent on a minimax game need not converge: G and D can circle the equilibrium, each "
            "undoing the other's last move (the Dirac-GAN circles forever). A penalty on D's gradient at the "
            "real data (R1) damps the circling: watch D's loss swing without it and settle with it."
        ),
        formula=r"\mathcal{L}_D \mathrel{+}= \frac{\gamma}{2}\, \mathbb{E}_{p_{data}} "
        r"\lVert \nabla_x D(x) \rVert^2",
        lesson=Lesson(
            "D's loss swings more without damping (std over the last half) than with R1.",
            (Compare(M(0, "d_loss", "spread"), ">", M(1, "d_loss", "spread")),),
        ),
        page="pages/gan.py",
        bench_steps=800,
    ),
    Step(
        key="gan-vanishing-gradients",
        section="gan",
        scenario=_preset("gan-vanishing-gradients", seconds=20.0),
        takeaway=(
            "Early in training D wins easily, D(G(z)) ≈ 0, where log(1 − D(G(z))) is flat: the minimax "
            "generator gets almost no gradient. The non-saturating loss −log D(G(z)) is steep exactly "
            "there: watch the generator's gradient norms."
        ),
        formula=r"\nabla \log(1 - D(G(z))) \to 0 \text{ as } D(G(z)) \to 0, \qquad "
        r"\mathcal{L}_G^{NS} = -\mathbb{E}_z \log D(G(z))",
        lesson=Lesson(
            "The non-saturating loss keeps the generator's gradient norm above twice minimax's.",
            (Compare(M(1, "g_grad_norm", "mean"), ">", M(0, "g_grad_norm", "mean"), 2.0),),
        ),
        page="pages/gan.py",
        bench_steps=100,
    ),
    Step(
        key="gan-dcgan",
        section="gan",
        scenario=_scenario(
            "gan-dcgan",
            "DCGAN's guidelines: batch norm and LeakyReLU",
            "8gaussians",
            [
                ("ReLU, no batch norm", "gan", {**GAN_NO_R1}),
                (
                    "LeakyReLU + batch norm (DCGAN)",
                    "gan",
                    {**GAN_NO_R1, "activation": "leaky_relu", "batch_norm": True},
                ),
            ],
            "energy_distance",
            ("activation", "batch_norm"),
        ),
        takeaway=(
            "DCGAN's recipe for stable training: batch norm in the generator (and D), LeakyReLU in D so its "
            "gradient never dies, Adam with β1 = 0.5, no pooling. Here the same small GAN (no R1) with and "
            "without the two architecture guidelines: with them it reaches the ring sooner (watch the energy "
            "distance), though neither run is safe from collapsing later."
        ),
        formula=r"\mathrm{LeakyReLU}(a) = \max(a, 0.2\,a),\qquad "
        r"\mathrm{BN}(h) = \gamma\, \frac{h - \mu_B}{\sigma_B} + \beta",
        lesson=Lesson(
            "With the guidelines the GAN's energy distance to the data, averaged over training, is lower.",
            (Compare(M(1, "energy_distance", "mean"), "<", M(0, "energy_distance", "mean")),),
        ),
        page="pages/gan.py",
        bench_steps=800,
    ),
    Step(
        key="gan-wgan",
        section="gan",
        scenario=_scenario(
            "gan-wgan",
            "WGAN: a critic whose gradient does not vanish",
            "8gaussians",
            [
                ("minimax, k = 5", "gan", {**GAN_NO_R1, "loss": "minimax", "d_steps": 5}),
                ("WGAN-GP, k = 5", "gan", {**GAN_NO_R1, "loss": "wgan-gp", "d_steps": 5}),
            ],
            "g_grad_norm",
            ("loss",),
        ),
        takeaway=(
            "When p_data and p_g barely overlap the JSD is stuck at log 2 and a saturated D gives G no "
            "direction. WGAN's critic estimates the Earth Mover's distance, which keeps shrinking as p_g "
            "moves toward the data, so G keeps a gradient even against a strong critic (five steps per G step)."
        ),
        formula=r"W(p_{data}, p_g) = \sup_{\lVert f \rVert_L \le 1} \mathbb{E}_{p_{data}}[f(x)] - "
        r"\mathbb{E}_{p_g}[f(x)], \quad + \lambda\, \mathbb{E}\,(\lVert \nabla f(\hat x) \rVert - 1)^2",
        lesson=Lesson(
            "Against a critic trained five steps per G step, WGAN-GP's generator gradient stays above "
            "minimax's.",
            (Compare(M(1, "g_grad_norm", "mean"), ">", M(0, "g_grad_norm", "mean")),),
        ),
        page="pages/gan.py",
        bench_steps=100,
    ),
    Step(
        key="flow-change-of-variables",
        section="flow",
        scenario=_preset("flow-filament", seconds=20.0),
        takeaway=(
            "A flow is an invertible map from a Gaussian; the change of variables gives log p(x) exactly, and "
            "coupling layers keep the Jacobian triangular so its determinant is the product of its diagonal. "
            "A continuous bijection cannot tear the plane: affine couplings leave filaments between the "
            "modes, splines thin them (watch the KL)."
        ),
        formula=r"\log p(x) = \log p_z\big(f^{-1}(x)\big) + \log\left|\det \frac{\partial f^{-1}}{\partial x}"
        r"\right|,\quad J = \begin{pmatrix} 1 & 0 \\ \partial y_2/\partial x_1 & e^{s(x_1)} \end{pmatrix}",
        lesson=Lesson(
            "The spline flow's KL to the truth ends below the affine flow's.",
            (Compare(M(1, "kl_to_truth", "last"), "<", M(0, "kl_to_truth", "last")),),
        ),
        page="pages/flows.py",
        bench_steps=300,
    ),
    Step(
        key="diffusion-forward-reverse",
        section="diffusion",
        scenario=_preset("diffusion-few-steps", seconds=20.0),
        takeaway=(
            "DDPM's forward process adds a little noise per step until x_T is N(0, I); a network learns to "
            "undo one step at a time, and sampling runs that reverse chain of Gaussian steps from pure noise. "
            "A Gaussian step is right only when it removes a little noise: the same model sampled in 10 "
            "steps instead of 100 lands off the moons (watch the energy distance)."
        ),
        formula=r"q(x_t \mid x_0) = \mathcal{N}\big(\sqrt{\bar\alpha_t}\, x_0, (1 - \bar\alpha_t) I\big),"
        r"\quad \mathcal{L} = \mathbb{E} \lVert \varepsilon - \varepsilon_\theta(x_t, t) \rVert^2",
        lesson=Lesson(
            "100 reverse steps end closer to the data (energy distance less than half) than 10.",
            (Compare(M(1, "energy_distance", "last"), "<", M(0, "energy_distance", "last"), 0.5),),
        ),
        page="pages/diffusion.py",
        bench_steps=600,
    ),
    Step(
        key="score-langevin",
        section="diffusion",
        scenario=_preset("langevin-low-density", seconds=30.0),
        takeaway=(
            "Score matching learns ∇x log p(x) without the normaliser, and Langevin dynamics samples by "
            "following it uphill with noise. At one small σ the score is wrong between the modes; a ladder "
            "of noise levels (annealed Langevin) learns it everywhere: both find all 25 modes, but plain "
            "Langevin strands a third of its samples between them and gets the modes' weights wrong (watch "
            "the energy distance)."
        ),
        formula=r"\mathcal{L} = \mathbb{E}\Big\lVert s_\theta(x + \sigma\varepsilon, \sigma) + "
        r"\frac{\varepsilon}{\sigma}\Big\rVert^2,\quad x \leftarrow x + \frac{\alpha}{2} s_\theta(x, \sigma)"
        r" + \sqrt{\alpha}\, z",
        lesson=Lesson(
            "Annealed Langevin's samples end closer to the data (energy distance under half) and fewer of them "
            "lie between the modes (a larger high-quality share) than plain Langevin's at one σ.",
            (
                Compare(M(1, "energy_distance", "last"), "<", M(0, "energy_distance", "last"), 0.5),
                Compare(M(1, "high_quality", "last"), ">", M(0, "high_quality", "last")),
            ),
        ),
        page="pages/diffusion.py",
        bench_steps=600,
    ),
    Step(
        key="comparison-table",
        section="table",
        scenario=_scenario(
            "comparison-table",
            "The comparison table, measured",
            "moons",
            [
                ("flow", "flow", {}),
                ("VAE", "vae", {}),
                ("GAN", "gan", {}),
                ("diffusion", "ddpm", {}),
            ],
            "energy_distance",
            ("model",),
            seconds=30.0,
        ),
        takeaway=(
            "The lecture's table: flows and autoregressive models give exact likelihoods, the VAE a bound, "
            "GANs and diffusion none; GANs and flows sample in one pass, diffusion in many. Here the table "
            "is measured on one dataset: who reports an NLL, how close the samples get, what a sample costs."
        ),
        formula=r"\begin{array}{lccc} & \log p(x) & \text{sampling} & \text{quality} \\ \hline "
        r"\text{flow, AR} & \text{exact} & 1 \text{ pass} / d & \text{good} \\ "
        r"\text{VAE} & \text{bound} & 1 \text{ pass} & \text{blurry} \\ "
        r"\text{GAN} & - & 1 \text{ pass} & \text{sharp, collapse} \\ "
        r"\text{diffusion} & - & T \text{ passes} & \text{best} \end{array}",
        lesson=Lesson(
            "Flow and VAE report an NLL, GAN and diffusion do not, and diffusion's samples cost the most.",
            (
                Present(0, "test_nll"),
                Present(1, "test_nll"),
                Absent(2, "test_nll"),
                Absent(3, "test_nll"),
                Compare(M(3, "sample_ms", "last"), ">", M(0, "sample_ms", "last")),
                Compare(M(3, "sample_ms", "last"), ">", M(1, "sample_ms", "last")),
                Compare(M(3, "sample_ms", "last"), ">", M(2, "sample_ms", "last")),
            ),
        ),
        page="pages/scoreboard.py",
        bench_steps=100,
    ),
    Step(
        key="ar-product",
        section="ar",
        scenario=_preset("ar-ordering", seconds=20.0),
        takeaway=(
            "An autoregressive model writes p(x) as a product of one-dimensional conditionals, exact for "
            "any order and any dimension d, and trains it by maximum likelihood. Every order is the same "
            "density, but a small model represents some orders better: watch the KL of the two orders."
        ),
        formula=r"p(x) = \prod_{i=1}^{d} p(x_i \mid x_1, \dots, x_{i-1}) = \prod_{i=1}^{d} p(x_i \mid x_{<i})",
        lesson=Lesson(
            "x1 first ends with a lower KL to the truth than x2 first.",
            (Compare(M(0, "kl_to_truth", "last"), "<", M(1, "kl_to_truth", "last")),),
        ),
        page="pages/autoregressive.py",
        bench_steps=400,
    ),
    Step(
        key="ar-sequential-sampling",
        section="ar",
        scenario=_scenario(
            "ar-sequential-sampling",
            "PixelRNN vs PixelCNN: parallel training, sequential sampling",
            "moons",
            [("autoregressive (MADE)", "ar", {}), ("flow (one pass)", "flow", {})],
            "sample_ms",
            ("model",),
        ),
        takeaway=(
            "PixelRNN computes each conditional with a recurrent network, sequential in training and sampling; "
            "PixelCNN (and MADE here) masks the network so that one pass gives every conditional, which "
            "makes training parallel. Sampling stays sequential, d passes against a flow's one, but at d = 2 "
            "that is only two passes and costs nothing here (watch the sampling times); the Autoregressive "
            "page's dimension ladder shows the cost growing with d."
        ),
        formula=r"\text{train: } \log p(x) = \textstyle\sum_i \log p(x_i \mid x_{<i}) \text{ in 1 masked pass;}"
        r"\quad \text{sample: } x_i \sim p(x_i \mid x_{<i}),\ i = 1..d \text{ (} d \text{ passes)}",
        lesson=Lesson(
            "Both learn an exact density (KL < 0.3 nats), and at d = 2 the AR model's two sequential "
            "passes sample no slower than the flow's one pass through its layers.",
            (
                Compare(M(0, "kl_to_truth", "last"), "<", 0.3),
                Compare(M(1, "kl_to_truth", "last"), "<", 0.3),
                Compare(M(0, "sample_ms", "last"), "<", M(1, "sample_ms", "last")),
            ),
        ),
        page="pages/autoregressive.py",
        bench_steps=300,
    ),
)
STEP_KEYS = [s.key for s in STEPS]


def get_step(key: str) -> Step:
    for s in STEPS:
        if s.key == key:
            return s
    raise KeyError(f"there is no tour step '{key}'; choose one of {', '.join(STEP_KEYS)}")
