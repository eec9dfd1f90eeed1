"""Inverse problems: given x1 = c (or a noisy reading of it), infer x2 with each family, against the true conditional."""

import streamlit as st

st.title("Inverse problems")  # before the heavy imports: the page paints while torch loads

from lab import inverse as I  # noqa: E402
from lab.base import REGISTRY, get_model_class  # noqa: E402
from lab.live.session import JobError  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import concepts as cv  # noqa: E402
from lab.viz import inverse as iv  # noqa: E402
from pages import ui  # noqa: E402

st.caption(
    "Observe one coordinate and infer the other: the answer is a distribution p(x_other | observation), not a point. "
    "Each family answers its own way — autoregressive models sample the conditional exactly, flows (and any "
    "density) by Bayes on a fine grid, diffusion by inpainting, GAN / VAE / AE by optimising their latent — and is "
    "scored against the dataset's true conditional."
)
ui.url_notes()
ui.lecture_notes("inverse", "challenges")
runner = ui.get_runner()
FAMILIES = {}
for k in REGISTRY:
    try:
        FAMILIES[k] = get_model_class(k).title
    except ImportError:
        pass

with st.sidebar:
    ds = ui.dataset_picker("inverse", allow_upload=False)
    ui.linked(
        "inverse.families",
        [k for k in ("ar", "flow", "vae", "gan", "ddpm") if k in FAMILIES],
        choices=list(FAMILIES),
    )
    keys = st.multiselect(
        "families",
        list(FAMILIES),
        [k for k in ("ar", "flow", "vae", "gan", "ddpm") if k in FAMILIES],
        format_func=FAMILIES.get,
        key="inverse.families",
    )
    ui.linked("inverse.methods", ["autoregressive", "inpaint", "grid", "latent"], choices=list(I.METHODS))
    methods = st.multiselect(
        "methods (each family uses those it supports)",
        list(I.METHODS),
        ["autoregressive", "inpaint", "grid", "latent"],
        key="inverse.methods",
        help="\n\n".join(f"**{m}**: {t}" for m, t in I.METHODS.items()),
    )
    st.markdown("**Regularisation** (latent inversion: GAN, VAE, AE)")
    LAMBDAS = [0.0, 0.01, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0, 1000.0]
    ui.linked("inverse.prior_weight", 1.0, choices=LAMBDAS)
    lam = st.select_slider(
        "prior weight λ",
        LAMBDAS,
        1.0,
        format_func=lambda v: f"{v:g}",
        key="inverse.prior_weight",
        help=I.InverseConfig.__dataclass_fields__["prior_weight"].metadata["help"],
    )
    ui.linked("inverse.lambda_sweep", False)
    sweep = st.toggle("compare λ = 0, 0.1, 1, 10", key="inverse.lambda_sweep")
    budget = ui.budget_widget("inverse", 20.0)
    seed = ui.seed_widget("inverse")
if ds is None:
    st.stop()

b = ds.bounds()
c1, c2, c3 = st.columns([1, 3, 2])
ui.linked("inverse.dim", 0, choices=[0, 1])
dim = c1.radio("observe", [0, 1], format_func=lambda d: f"x{d + 1}", key="inverse.dim")
lo, hi = (b[0], b[1]) if dim == 0 else (b[2], b[3])
ui.linked(f"inverse.c{dim}", float(round((lo + hi) / 2, 2)), lo=float(lo), hi=float(hi))
c = c2.slider(
    f"observed value c of x{dim + 1}",
    float(lo),
    float(hi),
    float(round((lo + hi) / 2, 2)),
    0.01,
    key=f"inverse.c{dim}",
)
ui.linked("inverse.sigma", 0.0, lo=0.0, hi=0.5)
sigma = c3.slider(
    "measurement noise σ",
    0.0,
    0.5,
    0.0,
    0.01,
    key="inverse.sigma",
    help="0: x = c exactly. Above 0: the reading is c = x + N(0, σ²).",
)

truth = I.true_conditional(ds, dim, c, sigma, n=400)
sols = I.solutions(truth)
truth_spread = I.conditional_spread(truth)
st.info(I.ill_posedness(truth, dim, c))

ids = [
    ui.ensure_run(runner, f"inverse/{k}", RunSpec(k, ds, None, seed=seed, max_seconds=budget)) for k in keys
]
for k in FAMILIES:
    if k not in keys:
        runner.remove(f"inverse/{k}")
ui.controls(runner, ids, "inverse")


def answers(sweep_lams=()):
    """Every (family, method) answer at λ, cached per training step and observation; and for latent
    inversion the answers at each λ of `sweep_lams` ((family title, λ, answer, score) rows)."""
    cache = st.session_state.setdefault("inverse.cache", {})
    out, swept = [], []

    def solve(k, rid, step, m, w):
        ck = (k, step, ds.name, str(ds.params()), dim, c, sigma, m, seed, w if m == "latent" else None)
        if ck not in cache:
            kw = dict(dim=dim, c=c, truth=truth, method=m, n=500, seed=seed, sigma=sigma)
            cache[ck] = runner.call(rid, "inverse", solver=I.InverseConfig(prior_weight=w), **kw)
        return cache[ck]

    for k, rid in zip(keys, ids):
        snap = runner.snapshot(rid) if rid else None
        if snap is None or snap.step == 0 or snap.status in ("building", "error"):
            continue
        try:  # each answer is solved on the model in its worker
            info = cache.setdefault(("info", rid, snap.step), runner.call(rid, "info"))
            out += [solve(k, rid, snap.step, m, lam) for m in info["inverse_methods"] if m in methods]
            if "latent" in info["inverse_methods"]:
                swept += [(FAMILIES[k], w, *solve(k, rid, snap.step, "latent", w)) for w in sweep_lams]
        except JobError as e:
            st.warning(f"{FAMILIES.get(k, k)}: {e}")
    if len(cache) > 200:
        cache.clear()
    return out, swept


@ui.live(runner)
def view():
    if runner.busy:
        st.caption("Training… the answers appear when training is paused or done.")
        return
    res, swept = answers((0.0, 0.1, 1.0, 10.0) if sweep else ())
    left, right = st.columns(2)
    ui.live_chart(
        cv.slice_figure(
            ui.truth_grid(ds),
            ds.sample(1500, seed),
            dim,
            c,
            [a for a, _ in res],
            f"{ds.title}: the observation line and each answer",
            b,
        ),
        key="inverse.slice",
        where=left,
    )
    ui.live_chart(
        cv.conditional_figure(
            truth, [a for a, _ in res], dim, sols, f"p(x{2 - dim} | observation): truth (black) and answers"
        ),
        key="inverse.cond",
        where=right,
    )
    rows = []
    for a, s in res:
        note = a.error or a.info.get("note", "")
        if "residual" in a.info:
            note = note or f"λ = {lam:g}; mean |x{dim + 1} − c| after optimisation: {a.info['residual']:.3f}"
        if "acceptance" in a.info:
            note = note or f"accepted {a.info['acceptance']:.2%} of {a.info['draws']:,} draws"
        rows.append(
            {
                "family": a.title,
                "method": a.method,
                "energy distance": s.get("energy_distance"),
                "floor (truth vs truth)": s.get("energy_distance_floor"),
                "KL(truth ‖ model)": s.get("kl"),
                "spread": s.get("spread"),
                "off manifold": s.get("off_manifold"),
                "note": note,
            }
        )
    if rows:
        st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(
            "Energy distance between the answer's x values and the true conditional's (lower is better; the floor "
            "is two true samples of the same size). KL on the grid where the method gives a density. Spread: the "
            f"std of the answers' x{2 - dim} (the true conditional's: {truth_spread:.2f}). Off manifold: the share of "
            "answer points where the true density is below the level that holds 99 % of the data. Latent "
            "optimisation is mode-seeking: each start finds the solution nearest it, so its spread is not the truth's."
        )
    if swept:
        st.plotly_chart(
            iv.regularisation_figure(
                [{"family": f, "prior_weight": w, **s} for f, w, _, s in swept], truth_spread
            ),
            key="inverse.lambda_figure",
        )
        st.caption(
            "Latent inversion minimises (decode(z) − c)² / 2s² + λ·(−log p(z)). λ = 0 fits the observation "
            "alone: the problem is ill-posed, whatever it does not pin down stays at its random start. Raising λ "
            "trades data fit for prior plausibility: the answers gather (smaller spread) towards the prior's "
            "centre, and past the point where the prior wins they leave the observation line and the data."
        )
    else:
        st.caption(
            "Press Train: each family's answer appears here when training is paused or done."
            if keys
            else "Choose families in the sidebar."
        )


view()
ui.record_expander(runner, {i: i.split("/")[1] for i in ids if i}, ds.bounds(), "inverse")
ui.sync_url()
