"""Every page under Streamlit's AppTest: it runs without an exception and draws its figures."""

import glob
import os
import time

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import built, charts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HELPERS = ("ui.py", "links.py", "family_page.py", "live_chart.py")  # shared page pieces, not pages
PAGES = sorted(
    os.path.relpath(p, ROOT)
    for p in glob.glob(os.path.join(ROOT, "pages", "*.py"))
    if os.path.basename(p) not in HELPERS
)


def wait_for(pred, timeout: float = 60.0) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return False


def _app(path: str) -> AppTest:
    return AppTest.from_file(os.path.join(ROOT, path), default_timeout=180)


def test_router_lists_the_pages():
    at = _app("streamlit_app.py").run()
    assert not at.exception, at.exception


@pytest.mark.parametrize("page", PAGES)
def test_page_runs_without_exception(page):
    at = _app(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} has no title"


def test_datasets_page_trains_the_gmm_live():
    at = _app("pages/datasets.py").run()
    runner = at.session_state["runner"]
    assert wait_for(lambda: built(runner, "datasets/gmm"))  # built in the background
    at.run()
    assert len(charts(at)) >= 2  # truth and the GMM
    at.button(key="datasets.play").click().run()
    assert wait_for(lambda: runner.snapshot("datasets/gmm").step > 0)
    at.run()
    assert not at.exception
    assert runner.snapshot("datasets/gmm").step > 0
    assert any("Gaussian mixture (EM): step" in c.value for c in at.caption)


def test_datasets_page_reports_a_bad_upload_in_one_sentence():
    at = _app("pages/datasets.py").run()
    at.selectbox(key="datasets.data").set_value("upload CSV").run()
    assert not at.exception
    assert any("Upload a file" in c.value for c in at.caption)


def test_a_link_sets_the_widgets_and_bad_values_are_noted():
    at = _app("pages/datasets.py")
    at.query_params["datasets.data"] = "8gaussians"
    at.query_params["datasets.seed"] = "banana"
    at.run()
    assert not at.exception
    assert at.selectbox(key="datasets.data").value == "8gaussians"
    assert any("Ignored datasets.seed='banana'" in i.value for i in at.info)


@pytest.mark.parametrize(
    "page, key, raw, expected",
    [
        ("pages/flows.py", "flows.layer", "40", 40),
        ("pages/diffusion.py", "diffusion.t", "70", 70),
        ("pages/inverse.py", "inverse.families", "ar,gmm", ["ar", "gmm"]),
        ("pages/scoreboard.py", "scoreboard.seeds", "3", 3),
        ("pages/gan.py", "gan.speed", "10", "10"),
    ],
)
def test_plain_widgets_follow_the_link(page, key, raw, expected):
    at = _app(page)
    at.query_params[key] = raw
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[key] == expected


def test_a_bad_plain_widget_value_is_a_note():
    at = _app("pages/flows.py")
    at.query_params["flows.layer"] = "900"
    at.run()
    assert not at.exception
    assert any("Ignored flows.layer='900'" in i.value for i in at.info)
    assert at.session_state["flows.layer"] == 100


def test_compare_panels_update_in_place_as_live_charts():
    """A live panel keeps its element id while its figure changes (st.plotly_chart's id hashes the
    figure, so the browser would remount it and replot from scratch on every update)."""
    import json

    at = _app("pages/compare.py")
    at.query_params["compare.families"] = "gmm"
    at.run()
    runner = at.session_state["runner"]
    assert wait_for(lambda: not runner.building)
    at.run()

    def panel():
        (el,) = [b for b in at.get("bidi_component") if b.proto.id.endswith("compare.fig.compare/0:gmm")]
        return el.proto.id, json.loads(json.loads(el.proto.json))

    first_id, first = panel()
    assert first["layout"]["title"]["text"] == "gmm · step 0"
    assert first["layout"]["images"] and [t["type"] for t in first["data"]] == ["scatter"]
    runner.step(["compare/0:gmm"], 3)
    assert wait_for(lambda: runner.snapshot("compare/0:gmm").step == 3)
    at.run()
    later_id, later = panel()
    assert later["layout"]["title"]["text"] == "gmm · step 3"
    assert later_id == first_id
    assert not at.exception
    runner.close()


def test_a_fed_panel_gets_only_its_feed_address_from_the_page_while_it_trains():
    """While a run trains its panel fetches its pictures from the feed: a rerun must not send each new
    picture again (the browser decoded ~30 KB a panel every second for nothing); paused, the page sends it."""
    import json

    at = _app("pages/compare.py")
    at.query_params["compare.families"] = "ae"
    at.query_params["compare.seconds"] = "600"
    at.run()
    runner = at.session_state["runner"]
    rid = "compare/0:ae"
    assert wait_for(lambda: not runner.building)
    at.run()

    def panel():
        (el,) = [b for b in at.get("bidi_component") if b.proto.id.endswith(f"compare.fig.{rid}")]
        return json.loads(json.loads(el.proto.json))

    assert panel()["data"]  # not training: the page draws the picture itself
    runner.play([rid])
    assert wait_for(lambda: runner.moving(rid) and runner.snapshot(rid).step > 0)
    at.run()
    fed = panel()
    assert fed["live"] is True and fed["feed"] and "data" not in fed and "layout" not in fed
    runner.pause([rid])
    assert wait_for(lambda: not runner.moving(rid))
    at.run()
    still = panel()
    assert (
        still["live"] is False and still["data"] and still["layout"]["title"]["text"].startswith("ae · step ")
    )
    assert not at.exception
    runner.close()


def test_the_speed_slows_every_run_on_the_page_and_a_bad_one_is_a_note():
    at = _app("pages/compare.py")
    at.query_params["compare.families"] = "gmm,flow"
    at.query_params["compare.speed"] = "3"
    at.run()
    runner = at.session_state["runner"]
    ids = ["compare/0:gmm", "compare/1:flow"]
    assert all(runner.speed(i) == 3.0 for i in ids)
    at.selectbox(key="compare.speed").set_value("full").run()
    assert all(runner.speed(i) is None for i in ids)
    runner.close()
    bad = _app("pages/compare.py")
    bad.query_params["compare.families"] = "gmm"
    bad.query_params["compare.speed"] = "fast"
    bad.run()
    assert not bad.exception
    assert any("Ignored compare.speed='fast'" in i.value for i in bad.info)
    bad.session_state["runner"].close()


@pytest.mark.parametrize("raw, on", [("true", True), ("0", False)])
def test_lecture_mode_comes_from_the_link_and_stays_in_it(raw, on):
    """The switch is drawn after the page, whose sync_url rewrites the link: the router reads it first."""
    at = _app("streamlit_app.py")
    at.query_params["lecture"] = raw
    at.run()
    assert not at.exception
    assert at.session_state["lecture"] is on and at.toggle(key="lecture").value is on
    assert (at.query_params.get("lecture") == "true") is on  # kept when on (the default, off, is left out)
    at.session_state["runner"].close()


def test_a_bad_lecture_value_in_the_link_is_a_note():
    at = _app("streamlit_app.py")
    at.query_params["lecture"] = "loud"
    at.run()
    assert not at.exception
    assert at.session_state["lecture"] is False
    assert any("Ignored lecture='loud'" in i.value for i in at.info)
    at.session_state["runner"].close()


def _chart_titles(at) -> list[str]:
    """The titles of a page's live charts (their plotly layouts, as sent to the browser)."""
    import json

    titles = []
    for el in at.get("bidi_component"):
        try:
            spec = json.loads(json.loads(el.proto.json))
        except (ValueError, TypeError):
            continue
        title = (spec.get("layout") or {}).get("title") or {}
        titles.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return titles


@pytest.mark.parametrize(
    "page, rid, expected",
    [
        ("pages/flows.py", "flows/flow", ["Learned density, step 0", "True density"]),
        ("pages/autoregressive.py", "autoregressive/ar", ["Learned density, step 0"]),
        ("pages/gan.py", "gan/seed0", ["Samples, step 0"]),
        ("pages/diffusion.py", "diffusion/ddpm", ["Samples, step 0"]),
        ("pages/flow_matching.py", "fm/fm", ["Learned density, step 0", "True density"]),
    ],
)
def test_a_family_page_shows_its_run(page, rid, expected):
    """Once its run is built, a family page draws the run's pictures with its step, and after a few
    steps the same charts say the new step."""
    at = _app(page).run()
    runner = at.session_state["runner"]
    assert wait_for(lambda: built(runner, rid))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    titles = _chart_titles(at)
    for want in expected:
        assert any(t.startswith(want) for t in titles), (want, titles)
    runner.step([rid], 3)
    assert wait_for(lambda: runner.snapshot(rid).step == 3)
    at.run()
    assert any(t.startswith(expected[0].replace("step 0", "step 3")) for t in _chart_titles(at)), (
        _chart_titles(at)
    )


def test_compare_can_finish_in_a_wall_clock_budget():
    at = _app("pages/compare.py")
    at.query_params["compare.families"] = "gmm,flow"
    at.query_params["compare.budget"] = "wall"
    at.query_params["compare.seconds"] = "30"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    runner = at.session_state["runner"]
    specs = [runner.pool.record(runner._gid(i)).spec for i in runner.ids]
    assert specs and all(s.max_wall_seconds == 30 and s.max_seconds is None for s in specs)
    assert any("the comparison will end 30 s after Train" in c.value for c in at.caption)


def test_a_presets_watched_number_is_drawn_under_its_panels():
    """Each preset names the number its lesson is about; the page draws it over training for every run."""
    from lab.presets import PRESETS

    key = next(k for k, p in PRESETS.items() if p.watch == "g_grad_norm")
    at = _app("pages/compare.py")
    at.query_params["compare.preset"] = key
    at.run()
    runner = at.session_state["runner"]
    assert any(f"Watch: {'g grad norm'}" in h.value for h in at.subheader)
    assert wait_for(lambda: runner.ids and all(built(runner, i) for i in runner.ids))
    runner.step(runner.ids, 5)
    assert wait_for(lambda: all(runner.snapshot(i).step == 5 for i in runner.ids))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(t.startswith("g grad norm over training steps") for t in _chart_titles(at)), _chart_titles(at)


def test_a_link_note_stays_under_the_router_until_dismissed():
    """The router's own note (a bad ?lecture=) outlives the reruns that follow, and Dismiss removes it."""
    at = _app("streamlit_app.py")
    at.query_params["lecture"] = "**loud**"
    at.run()
    at.run()
    assert not at.exception
    assert any("Ignored lecture=` '**loud**' `" in i.value for i in at.info)
    at.button(key="_url_notes_dismiss").click().run()
    assert not any("Ignored lecture=" in i.value for i in at.info)
    at.session_state["runner"].close()
