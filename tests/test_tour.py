"""The lecture tour (lab/tour.py) and its page: the sections in order, runs that build, lessons that can
fail, and the Lecture page's previous / next and link under the router."""

import math
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from lab import tour
from lab.base import get_model_class, make_config
from lab.data import make_dataset
from lab.presets import varied_fields
from lab.run import Run, RunSpec
from lab.tour import SECTIONS, STEP_KEYS, STEPS, Absent, Compare, Lesson, Measure, Present, Within, get_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the lecture names in each section, as the tour's text must say it (lower case; any one of a tuple).
TOPICS = {
    "discriminative": ["p(y | x)", "bayes"],
    "tasks": ["density estimation", "sample generation", "representation", "learning", "inference"],
    "why": ["missing", "latent", "inverse problem", "forward problem"],
    "latent": [r"\int p(x \mid z)", ("intractable", "no closed form")],
    "ae": ["code", "reconstruct", "not a generative model"],
    "vae": ["elbo", "reparameterization", "kl", "gap", "log p(x)"],
    "gan": ["minimax", "d*", "−log 4", "jsd", "mode", "oscillat", "vanish", "dcgan", "wgan"],
    "flow": ["change of variables", "triangular", r"\det"],
    "diffusion": ["forward", "reverse", "ddpm", "score matching", "langevin"],
    "table": ["exact", "bound", "sampl"],
    "ar": [r"\prod_{i=1}^{d}", "pixelrnn", "pixelcnn", "sequential"],
}


def _text(step) -> str:
    parts = [step.title, step.takeaway, step.formula, step.notes, step.lesson.claim]
    parts += [t for pair in step.extra for t in pair]
    return " ".join(parts).lower()


def test_the_tour_covers_every_section_in_the_lectures_order():
    order = list(dict.fromkeys(s.section for s in STEPS))  # sections in the order the steps visit them
    assert order == [k for k, _ in SECTIONS]
    assert len(set(STEP_KEYS)) == len(STEP_KEYS)
    for key, topics in TOPICS.items():
        text = " ".join(_text(s) for s in STEPS if s.section == key)
        for t in topics:
            alts = t if isinstance(t, tuple) else (t,)
            assert any(a in text for a in alts), f"section {key} never says {alts}"
    with pytest.raises(KeyError, match="no tour step"):
        get_step("nope")


def test_every_step_has_two_sentences_a_formula_and_something_to_watch():
    for s in STEPS:
        assert len(re.findall(r"[.!?](\s|$)", s.takeaway)) == 2, s.key  # the takeaway in two sentences
        assert s.formula and s.scenario.watch, s.key
        assert s.scenario.runs and s.lesson.checks, s.key
        assert s.page == "" or os.path.exists(os.path.join(ROOT, s.page)), s.page


def test_the_tour_module_needs_no_torch():
    code = "import sys, lab.tour; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


@pytest.mark.parametrize("key", STEP_KEYS)
def test_every_steps_runs_build_and_report_what_the_step_reads(key):
    """Each run's config is valid for its family, the run builds and trains a step, and every series the
    step watches or checks is one the run's family reports (a loss, a metric that applies, or derived)."""
    step = get_step(key)
    sc = step.scenario
    assert varied_fields(sc) == set(sc.varies), (varied_fields(sc), sc.varies)
    ds = make_dataset(sc.data, **sc.data_params)
    reported = []
    for r in sc.runs:
        cls = get_model_class(r.model)
        run = Run(RunSpec(r.model, ds, make_config(cls.Config, r.config), seed=0, n_train=400))
        losses = run.model.train_step(run.batch())
        assert all(math.isfinite(v) for v in losses.values()), (r.label, losses)
        metrics = {"energy_distance", "energy_distance_floor", "sample_ms"}
        metrics |= {"test_nll", "kl_to_truth"} if cls.has_log_prob else set()
        metrics |= {"blur_gap"} | ({"modes", "high_quality"} if ds.modes is not None else set())
        names = set(losses) | metrics
        reported.append(names | ({"elbo_gap"} if {"neg_elbo", "test_nll"} <= names else set()))
    measures = [m for c in step.lesson.checks if isinstance(c, Compare) for m in (c.left, c.right)]
    measures += [c.measure for c in step.lesson.checks if isinstance(c, Within)]
    measures += [Measure(c.run, c.name) for c in step.lesson.checks if isinstance(c, Present)]
    for m in measures:
        if isinstance(m, Measure):
            assert m.name in reported[m.run], (m, reported[m.run])
            assert m.agg in tour.AGGREGATES
    for c in step.lesson.checks:
        if isinstance(c, Absent):
            assert c.name not in reported[c.run], (c, reported[c.run])
    assert any(sc.watch in rep for rep in reported), (sc.watch, reported)


# ---------------------------------------------------------------------------------------------
# Lessons on synthetic histories
# ---------------------------------------------------------------------------------------------


def _series(v: float, agg: str) -> tuple[np.ndarray, np.ndarray]:
    steps = np.arange(1, 13)
    if agg == "spread":  # a calm first half, then +-v: the last half's std is v
        return steps, np.array([0.0] * 6 + [v, -v] * 3)
    return steps, np.full(12, float(v))


def synthetic(step, broken: int | None = None) -> list[dict]:
    """Histories that satisfy every check of the step's lesson, or all but check `broken` (made false)."""
    vals: dict[tuple[int, str], tuple[float, str]] = {}
    absent_broken = []
    frozen: set[tuple[int, str]] = set()

    def get(m: Measure) -> float:
        return vals.setdefault((m.run, m.name), (1.0, m.agg))[0]

    for i, c in enumerate(step.lesson.checks):
        if isinstance(c, Absent):
            if i == broken:
                absent_broken.append((c.run, c.name))
            continue
        if isinstance(c, Present):
            vals[(c.run, c.name)] = (math.nan if i == broken else 1.0, "last")
            continue
        if isinstance(c, Within):
            off = 2 * c.tolerance if i == broken else 0.5 * c.tolerance
            vals[(c.measure.run, c.measure.name)] = (c.centre + off, c.measure.agg)
            continue
        b = get(c.right) if isinstance(c.right, Measure) else float(c.right)
        bound = c.factor * b + c.margin
        less = (c.op == "<") != (i == broken)
        v = bound - 0.5 * abs(bound) - 0.5 if less else bound + 0.5 * abs(bound) + 0.5
        key = (c.left.run, c.left.name)
        old = vals.get(key)
        if i == broken or (
            key not in frozen and (old is None or not (old[0] < bound if c.op == "<" else old[0] > bound))
        ):
            vals[key] = (v, c.left.agg)
        if i == broken:
            frozen.add(key)  # the broken check's number stays broken
    hist: list[dict] = [{} for _ in step.scenario.runs]
    for (run, name), (v, agg) in vals.items():
        if name == "elbo_gap":  # derived: neg_elbo - test_nll
            hist[run]["neg_elbo"] = _series(v, agg)
            hist[run]["test_nll"] = (np.arange(2, 13, 2), np.zeros(6))
        else:
            hist[run][name] = _series(v, agg)
    for run, name in absent_broken:
        hist[run][name] = _series(1.0, "last")
    return hist


@pytest.mark.parametrize("key", STEP_KEYS)
def test_each_lesson_passes_and_fails_as_it_should(key):
    step = get_step(key)
    good = step.check(synthetic(step))
    assert good.passed, (good.failed, good.numbers)
    assert good.numbers or all(isinstance(c, Absent) for c in step.lesson.checks)
    for i in range(len(step.lesson.checks)):
        bad = step.check(synthetic(step, broken=i))
        assert not bad.passed and bad.failed, (i, step.lesson.checks[i])
    empty = step.check([{} for _ in step.scenario.runs])  # nothing measured yet: not a pass
    assert not empty.passed


def test_hand_made_histories():
    """The numbers a lesson reads: the tail's mean, the spread, a derived gap, an absent series."""
    s = (np.arange(10), np.array([0, 0, 0, 0, 0, 0, 0, 0, 4.0, 6.0]))
    assert tour.aggregate({"a": s}, "a", "tail") == 5.0
    assert tour.aggregate({"a": s}, "a", "last") == 6.0
    assert tour.aggregate({"a": s}, "a", "mean") == 1.0
    assert math.isnan(tour.aggregate({}, "a"))
    h = {
        "neg_elbo": (np.array([1, 2, 3, 4]), np.array([3.0, 5.0, 2.0, 2.0])),
        "test_nll": (np.array([2, 4]), np.array([3.5, 1.0])),
    }
    steps, gap = tour.series(h, "elbo_gap")
    assert steps.tolist() == [2, 4] and gap.tolist() == [0.5, 1.0]  # mean of the window minus the bound

    collapse = get_step("gan-mode-collapse")
    modes = lambda k: {"modes": (np.arange(5), np.full(5, float(k)))}  # noqa: E731
    assert collapse.check([modes(3), modes(8)]).passed
    v = collapse.check([modes(8), modes(8)])  # PacGAN no better: the lesson is not shown
    assert not v.passed and "PacGAN" in v.failed
    assert v.numbers == {
        "PacGAN (packs of 4): modes (tail)": 8.0,
        "plain GAN (no packing): modes (tail)": 8.0,
    }

    lesson = Lesson("the second has no density", (Absent(1, "test_nll"),))
    assert lesson.check([{}, {}], ["a", "b"]).passed
    assert not lesson.check([{}, {"test_nll": s}], ["a", "b"]).passed
    lesson = Lesson("the first has one", (Present(0, "test_nll"),))
    assert lesson.check([{"test_nll": s}], ["a"]).passed
    inf = (np.arange(2), np.array([1.0, np.inf]))  # the last finite value counts; all inf: not reported
    assert lesson.check([{"test_nll": inf}], ["a"]).passed
    assert not lesson.check([{"test_nll": (np.arange(1), np.array([np.inf]))}], ["a"]).passed
    band = Lesson("settles at -log 4", (Within(Measure(0, "value", "last"), -math.log(4), 0.25),))
    near, far = (np.arange(2), np.array([0.0, -1.3])), (np.arange(2), np.array([-1.3, -0.9]))
    assert band.check([{"value": near}], ["G"]).passed and not band.check([{"value": far}], ["G"]).passed

    snap = tour.Snapshot(
        run_id="r",
        key="gan",
        title="GAN",
        step=7,
        losses={"g_loss": s},
        metrics={"modes": s},
        sample_seconds_per_1000=0.002,
    )
    h = tour.history(snap)
    assert set(h) == {"g_loss", "modes", "sample_ms"} and h["sample_ms"][1].tolist() == [2.0]


# ---------------------------------------------------------------------------------------------
# The Lecture page, under the router
# ---------------------------------------------------------------------------------------------


def _lecture(**params) -> AppTest:
    """The Lecture page through the router (the page leaves the pages-directory mode AppTest starts in)."""
    at = AppTest.from_file(os.path.join(ROOT, "streamlit_app.py"), default_timeout=180)
    for k, v in params.items():
        at.query_params[k] = v
    at.switch_page("pages/lecture.py")
    return at.run()


def _close(at: AppTest) -> None:
    at.session_state["runner"].close()


def test_next_and_previous_walk_the_tour_and_the_link_follows():
    at = _lecture(tour=STEP_KEYS[1])
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "The lecture, step by step"
    assert any(STEPS[1].title in h.value for h in at.subheader)
    runner = at.session_state["runner"]
    assert sorted(runner.ids) == [f"lecture/{STEP_KEYS[1]}/{i}" for i in range(len(STEPS[1].scenario.runs))]

    at.button(key="lecture.next").click().run()
    assert not at.exception
    assert at.session_state["tour"] == STEP_KEYS[2] and at.query_params["tour"] == STEP_KEYS[2]
    assert any(STEPS[2].title in h.value for h in at.subheader)
    assert runner.ids and all(i.startswith(f"lecture/{STEP_KEYS[2]}/") for i in runner.ids)  # the old runs go

    at.button(key="lecture.prev").click().run()
    at.button(key="lecture.prev").click().run()
    assert at.session_state["tour"] == STEP_KEYS[0]
    assert "tour" not in at.query_params  # the first step is the default: a clean link
    assert at.button(key="lecture.prev").disabled and not at.button(key="lecture.next").disabled
    _close(at)


def test_the_last_step_has_no_next_and_a_bad_step_is_a_note():
    at = _lecture(tour=STEP_KEYS[-1])
    assert at.button(key="lecture.next").disabled
    _close(at)
    bad = _lecture(tour="banana")
    assert not bad.exception
    assert bad.session_state["tour"] == STEP_KEYS[0]
    assert any("Ignored tour='banana'" in i.value for i in bad.info)
    _close(bad)


def test_the_tour_works_in_lecture_mode():
    at = _lecture(tour="gan-minimax", lecture="true")
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="lecture").value is True
    assert at.query_params["tour"] == "gan-minimax" and at.query_params["lecture"] == "true"
    assert len(at.get("latex")) >= 2  # the step's formula and D*
    assert [p.proto.page for p in at.get("page_link")] == ["gan"]  # the deeper view, through the router
    _close(at)


@pytest.mark.parametrize("key", STEP_KEYS)
def test_every_step_draws(key):
    at = _lecture(tour=key)
    assert not at.exception, [e.value for e in at.exception]
    assert at.get("latex") and any(get_step(key).takeaway == i.value for i in at.info)
    _close(at)


def test_the_watched_series_and_the_live_check_appear_once_the_runs_train():
    at = _lecture(tour="gan-vanishing-gradients")
    runner = at.session_state["runner"]
    t0 = time.time()
    while (runner.building or not runner.ids) and time.time() - t0 < 120:
        time.sleep(0.2)
    runner.step(runner.ids, 5)
    while any(runner.snapshot(i).step < 5 for i in runner.ids) and time.time() - t0 < 120:
        time.sleep(0.2)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Watch: g grad norm" in m.value for m in at.markdown)
    assert any("Lesson, checked live" in m.value for m in at.markdown)
    assert any("g_grad_norm (mean) =" in c.value for c in at.caption)
    _close(at)
