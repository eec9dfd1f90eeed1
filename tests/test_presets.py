"""Lecture presets: valid settings, and the Compare page shows each one (lesson + one panel per run)."""

import os
import time

import pytest
from streamlit.testing.v1 import AppTest

from lab.base import get_model_class, make_config
from lab.data import DATASETS
from lab.presets import PRESETS, Preset, PresetRun, get_preset, varied_fields
from tests.conftest import charts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_at_least_six_presets_each_with_a_lesson_and_a_contrast():
    assert len(PRESETS) >= 6
    for p in PRESETS.values():
        assert p.data in DATASETS and len(p.runs) >= 2 and len(p.lesson) > 100
        for r in p.runs:
            make_config(get_model_class(r.model).Config, r.config)  # raises on a bad field or value
    with pytest.raises(KeyError, match="no preset"):
        get_preset("nope")


@pytest.mark.parametrize("key", list(PRESETS))
def test_a_preset_varies_exactly_what_its_lesson_names(key):
    """The runs differ in the declared fields and in nothing else, so the lesson can credit them."""
    p = PRESETS[key]
    assert p.varies, f"{key} declares no field its lesson is about"
    assert varied_fields(p) == set(p.varies), (varied_fields(p), p.varies)


def test_varied_fields_sees_every_difference():
    gan = [PresetRun("a", "gan", {"pack": 1}), PresetRun("b", "gan", {"pack": 4, "ema": 0.0})]
    p = Preset("k", "t", "l", "8gaussians", tuple(gan), varies=("pack",))
    assert varied_fields(p) == {"pack", "ema"}  # the old mode-collapse preset's kind of mistake
    same = Preset("k", "t", "l", "moons", (PresetRun("a", "gan", {"pack": 1}), PresetRun("b", "gan", {})))
    assert varied_fields(same) == set()  # an explicit default is no difference
    mixed = Preset("k", "t", "l", "moons", (PresetRun("a", "flow"), PresetRun("b", "gan")))
    assert varied_fields(mixed) == {"model"}


@pytest.mark.parametrize("key", list(PRESETS))
def test_compare_page_shows_the_preset(key):
    at = AppTest.from_file(os.path.join(ROOT, "pages", "compare.py"), default_timeout=180)
    at.query_params["compare.preset"] = key
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    preset = PRESETS[key]
    assert any(preset.title in i.value for i in at.info)
    runner = at.session_state["runner"]
    t0 = time.time()
    while runner.building and time.time() - t0 < 180:
        time.sleep(0.2)
    at.run()
    assert not at.exception
    assert len(charts(at)) == len(preset.runs) + 1  # truth + one panel per run
    runner.close()
