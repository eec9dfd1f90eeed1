"""Lecture: the lecture's sections in order, one live scenario per step (lab/tour.py), with its lesson checked live."""

import streamlit as st

st.title("The lecture, step by step")  # before the heavy imports: the page paints while torch loads

from streamlit.errors import StreamlitAPIException  # noqa: E402

from lab import tour  # noqa: E402
from lab.base import ConfigError, get_model_class, make_config  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import curves  # noqa: E402
from lab.viz.common import density_spec  # noqa: E402
from pages import ui  # noqa: E402

ui._use_the_router()  # opened alone (as AppTest's switch_page does): rerun under the router
ui.url_notes()
runner = ui.get_runner()
KEYS, KEY = tour.STEP_KEYS, "tour"  # ?tour=gan-minimax
ui.linked(KEY, KEYS[0], choices=KEYS)
st.session_state.setdefault(KEY, KEYS[0])


def move(by: int) -> None:
    """Previous / next (a button's callback: it runs before the step's selectbox is drawn)."""
    i = KEYS.index(st.session_state[KEY]) + by
    st.session_state[KEY] = KEYS[min(max(i, 0), len(KEYS) - 1)]


def name(key: str) -> str:
    s = tour.get_step(key)
    return f"{KEYS.index(key) + 1}. {tour.SECTION_TITLES[s.section]}: {s.title}"


at = KEYS.index(st.session_state[KEY])
nav = st.columns([1, 5, 1], vertical_alignment="center")
nav[0].button("Previous", key="lecture.prev", on_click=move, args=(-1,), disabled=at == 0, width="stretch")
nav[1].selectbox("step", KEYS, key=KEY, format_func=name, label_visibility="collapsed")
nav[2].button(
    "Next", key="lecture.next", on_click=move, args=(1,), disabled=at == len(KEYS) - 1, width="stretch"
)
step = tour.get_step(st.session_state[KEY])
sc = step.scenario

with st.sidebar:  # hidden in lecture mode: the scenario's own seed and budget then
    seed = ui.seed_widget(f"lecture.{step.key}", sc.seed)
    seconds = ui.budget_widget(f"lecture.{step.key}", sc.seconds)

st.subheader(f"{tour.SECTION_TITLES[step.section]} · {step.title}")
st.info(step.takeaway)
st.latex(step.formula)
for text, latex in step.extra:
    st.markdown(text)
    st.latex(latex)
if step.notes:
    st.markdown(step.notes)
if step.note_keys:
    ui.lecture_notes(*step.note_keys)
PAGE_NAMES = {"classifiers": "Classifiers", "datasets": "Datasets", "inverse": "Inverse problems"}
PAGE_NAMES |= {"vae": "Autoencoder / VAE", "gan": "GAN", "flows": "Flows", "diffusion": "Diffusion"}
PAGE_NAMES |= {"scoreboard": "Scoreboard", "autoregressive": "Autoregressive"}
if step.page:
    stem = step.page.split("/")[-1].removesuffix(".py")
    try:
        st.page_link(
            step.page, label=f"The deeper view: {PAGE_NAMES.get(stem, stem)}", icon=":material/arrow_forward:"
        )
    except StreamlitAPIException:  # the page runs alone (no router): there is no page to link to
        pass

ds = ui._cached_dataset(sc.data, tuple(sorted(sc.data_params.items())))
ids, labels = [], {}
for i, r in enumerate(sc.runs):
    try:
        config = make_config(get_model_class(r.model).Config, r.config)
    except ConfigError as e:
        st.error(f"{r.label}: {e}")
        continue
    spec = RunSpec(r.model, ds, config, seed=seed, max_seconds=seconds, views=False)
    if rid := ui.ensure_run(runner, f"lecture/{step.key}/{i}", spec, many=len(sc.runs) > 2):
        ids.append(rid)
        labels[rid] = r.label
for stale in [r for r in runner.ids if r.startswith("lecture/") and r not in ids]:
    runner.remove(stale)  # the previous step's runs

ui.controls(runner, ids, "lecture")
truth, bounds = ui.truth_grid(ds), ds.bounds()
height = ui.fig_height(280)
left, right = st.columns([3, 2])


@ui.live(runner, every=ui.COMPARE_EVERY)
def panels():
    cells = [("true density", None)] + [(labels[i], i) for i in ids]
    for row in range(0, len(cells), 2):
        for col, (label, rid) in zip(st.columns(2), cells[row : row + 2]):
            with col:
                if rid is None:
                    ui.chart(
                        "lecture.truth",
                        (id(ds), seed, height),
                        lambda: density_spec(
                            truth, None, label, bounds, data=ds.sample(1000, seed), height=height
                        ),
                    )
                    continue
                snap = runner.snapshot(rid)
                if not ui.drawn(snap):
                    continue
                title = f"{label} · step {snap.step:,}"
                ui.chart(
                    f"lecture.fig.{rid}",
                    (snap.time, height),
                    lambda: density_spec(
                        snap.density, snap.samples, title, bounds, height=height, max_points=500
                    ),
                )
                ui.status(snap)


@ui.live(runner, every=1.0, with_state=False)
def watched():
    """The one number to watch, large, and the lesson checked on the runs' histories as the bench checks it."""
    snaps = [runner.snapshot(i) for i in ids]
    hist = [tour.history(s) for s in snaps]
    what = tour.DERIVED[sc.watch][1] if sc.watch in tour.DERIVED else sc.watch.replace("_", " ")
    series = {labels[i]: s for i, h in zip(ids, hist) if (s := tour.series(h, sc.watch)) is not None}
    st.markdown(f"**Watch: {what}**")
    if series:
        ui.chart(
            "lecture.watch",
            (sc.watch, tuple(s.time for s in snaps if s), ui.fig_height(420)),
            lambda: curves(series, f"{what} over training", height=ui.fig_height(420), **step.line),
        )
    else:
        st.caption("It appears here once the runs have trained a little (metrics come every few seconds).")
    v = step.check(hist)
    verdict = "holds now" if v.passed else f"not yet: {v.failed}"
    st.markdown(f"**Lesson, checked live:** {step.lesson.claim} — *{verdict}*")
    st.caption("; ".join(f"{k} = {x:.4g}" for k, x in v.numbers.items()))


with left:
    panels()
with right:
    watched()
ui.record_expander(runner, labels, bounds, "lecture")
ui.sync_url()
