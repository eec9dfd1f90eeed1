"""Scoreboard: the lecture's comparison table of generative families, measured here, each claim beside its number."""

import streamlit as st

st.title(
    "Scoreboard: the lecture's table, measured"
)  # before the heavy imports: the page paints while torch loads

from lab import scoreboard as S  # noqa: E402
from lab.base import REGISTRY  # noqa: E402
from lab.data import DATASETS  # noqa: E402
from lab.sweep import cores  # noqa: E402
from lab.viz import concepts as cv  # noqa: E402
from pages import ui  # noqa: E402

st.caption(
    "GAN — high quality, fast sampling, unstable, mode collapse, no density. VAE — fast sampling, approximate density, "
    "blurry. Flows — exact likelihood, costly. Diffusion — high quality, diverse, slow sampling. Autoregressive — exact "
    "likelihood, stable, slow sequential sampling. Here every family is trained under the same budget and seeds, and "
    "each cell shows the measured value with the claim beside it: green where the measurement agrees, red where it does not."
)
ui.url_notes()
usable = {k: why for k, why in S.available(list(REGISTRY)).items() if not why}

with st.sidebar:
    ui.linked(
        "scoreboard.families", [k for k in S.LECTURE_KEYS + ["gmm"] if k in usable], choices=list(usable)
    )
    keys = st.multiselect(
        "families",
        list(usable),
        [k for k in S.LECTURE_KEYS + ["gmm"] if k in usable],
        format_func=lambda k: S.FAMILY_TITLES.get(k, k),
        key="scoreboard.families",
    )
    ui.linked(
        "scoreboard.data",
        [n for n in DATASETS if n not in ("8gaussians", "25gaussians")][0],
        choices=[n for n in DATASETS if n not in ("8gaussians", "25gaussians")],
    )
    main = st.selectbox(
        "dataset", [n for n in DATASETS if n not in ("8gaussians", "25gaussians")], key="scoreboard.data"
    )
    ui.linked("scoreboard.modes", "8gaussians", choices=["8gaussians", "25gaussians"])
    modes = st.selectbox("dataset for mode coverage", ["8gaussians", "25gaussians"], key="scoreboard.modes")
    ui.linked("scoreboard.seconds", 3.0, lo=1.0, hi=60.0)
    seconds = st.slider("training budget per run (s)", 1.0, 60.0, 3.0, 0.5, key="scoreboard.seconds")
    ui.linked("scoreboard.seeds", 5, lo=2, hi=10)
    seeds = st.slider("seeds (stability = spread across them)", 2, 10, 5, key="scoreboard.seeds")

job: S.ScoreboardJob | None = st.session_state.get("scoreboard.job")
n_runs = len(keys) * seeds * 2
c1, c2, c3 = st.columns([1, 1, 3])
if c1.button("Measure", type="primary", key="scoreboard.run", width="stretch", disabled=not keys):
    if job is not None:
        job.cancel()
    job = S.ScoreboardJob(keys, seconds, seeds, main, modes).start()
    st.session_state["scoreboard.job"] = job
if c2.button("Stop", key="scoreboard.stop", width="stretch", disabled=job is None or job.done):
    job.cancel()
n_cores = cores()
c3.caption(
    f"{n_runs} runs of {seconds:g} s each (plus evaluation), a sweep on {n_cores} trainer processes (one per "
    f"core): about {n_runs * (seconds + 0.6) / n_cores / 60:.1f} minutes. The page stays usable meanwhile."
)


@st.fragment(run_every=1.0 if job is not None and not job.done else None)
def view():
    if job is None:
        st.info("Press Measure. The page stays usable while it runs; the table fills in run by run.")
        return
    if not job.done:
        st.progress(
            job.progress,
            text=f"{job.n_done}/{len(job.plan)} runs in {job.elapsed:.0f} s — training {job.current}",
        )
    elif st.session_state.get("scoreboard.was_running"):
        st.session_state["scoreboard.was_running"] = False
        st.rerun()  # one full rerun so the buttons catch up
    st.session_state["scoreboard.was_running"] = not job.done
    if job.error:
        st.error(f"The measurement stopped: {job.error}")
    for k, why in job.skipped.items():
        st.warning(f"{k}: {why}")
    rows = job.rows()
    st.caption(
        f"{job.seconds:g} s training per run, {job.seeds} seeds, {job.main} (modes on {job.modes_dataset}). "
        "Medians over seeds; “fast / slow / high quality / blurry / stable” are judged against the median of the lecture's "
        "families in the table (the GMM is a reference row, judged against nothing)."
    )
    st.plotly_chart(cv.scoreboard_figure(rows, S.COLUMNS), key="scoreboard.table")
    dis = S.disagreements(rows)
    if dis and job.done:
        st.markdown(
            "**Where the measurement disagrees with the lecture**\n\n" + "\n".join(f"- {d}" for d in dis)
        )
    errors = sorted({f"{m.key} failed on {m.dataset}: {m.error}." for m in list(job.measurements) if m.error})
    if errors:
        st.warning(" ".join(errors))


view()
with st.expander("What each column measures"):
    st.markdown("\n".join(f"- **{S.COLUMNS[c]}**: {h}" for c, h in S.COLUMN_HELP.items()))
ui.sync_url()
