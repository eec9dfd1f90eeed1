"""Hostile links under AppTest: every bad value is ignored with a note (plain text, kept until dismissed),
never an exception; the app never writes a link too long for an HTTP server."""

import os
import re

import pytest
from streamlit.testing.v1 import AppTest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {  # page -> keys it reads from the link (ints, floats with a range, a field widget, a name)
    "pages/flows.py": ["flows.layer", "flows.seed"],
    "pages/inverse.py": ["inverse.c0", "inverse.sigma"],
    "pages/scoreboard.py": ["scoreboard.seconds", "scoreboard.seeds"],
    "pages/datasets.py": ["datasets.seed", "datasets.n_show"],
}
HOSTILE = ["nan", "inf", "-inf", "1e308", "", "9" * 10_000, "é🙂", "[x](http://a)", "<script>", ["1", "2"]]


def _app(path: str) -> AppTest:
    return AppTest.from_file(os.path.join(ROOT, path), default_timeout=180)


def _notes(at: AppTest) -> str:
    return " ".join(i.value for i in at.info)


def _close(at: AppTest) -> None:
    if "runner" in at.session_state:
        at.session_state["runner"].close()


@pytest.mark.parametrize("page", list(KEYS))
@pytest.mark.parametrize("raw", HOSTILE, ids=lambda r: repr(r)[:12])
def test_a_hostile_link_value_is_ignored_with_a_note(page, raw):
    at = _app(page)
    for key in KEYS[page]:
        at.query_params[key] = raw
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    notes = _notes(at)
    for key in KEYS[page]:
        assert f"Ignored {key}=" in notes, (key, notes[:300])
    assert len(notes) < 2_000  # a 10,000-character value is cut in its note
    _close(at)


def _in_code_span(body: str, text: str) -> bool:
    """text sits inside a Markdown code span of body (so nothing in it is rendered)."""
    for m in re.finditer(r"(`+) (.*?) \1(?!`)", body):
        if text in m.group(2):
            return True
    return False


@pytest.mark.parametrize(
    "raw", ["[x](http://a)", "**b**", "$x$", "![i](http://a/i.png)", "<script>", "a`b``c"]
)
def test_a_markup_value_is_shown_as_plain_text(raw):
    at = _app("pages/flows.py")
    at.query_params["flows.layer"] = raw
    at.run()
    assert not at.exception
    body = next(i.value for i in at.info if "Ignored flows.layer=" in i.value)
    assert _in_code_span(body, repr(raw)), body  # the raw characters, in a code span: not Markdown
    _close(at)


def test_a_note_stays_until_dismissed():
    at = _app("pages/flows.py")
    at.query_params["flows.layer"] = "nan"
    at.run()
    assert "Ignored flows.layer=" in _notes(at)
    assert "flows.layer" not in at.query_params  # the bad value left the link...
    at.run()
    at.run()
    assert "Ignored flows.layer=" in _notes(at)  # ...and its note is still there
    at.button(key="_url_notes_dismiss").click().run()
    assert "Ignored flows.layer=" not in _notes(at)
    _close(at)


def test_nan_is_not_accepted_as_a_number():
    at = _app("pages/scoreboard.py")
    at.query_params["scoreboard.seconds"] = "nan"
    at.run()
    assert not at.exception
    assert at.session_state["scoreboard.seconds"] == 3.0
    _close(at)


def test_an_over_long_link_is_not_written(monkeypatch):
    from lab.data import DRAW_GRID, encode_cells
    from pages import links

    monkeypatch.setattr(links, "MAX_QUERY", 120)  # a whole drawing (~170 characters) is then too long
    at = _app("pages/datasets.py").run()
    at.session_state["datasets.data"] = "draw"
    at.session_state["datasets.cells"] = encode_cells(range(DRAW_GRID * DRAW_GRID))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "datasets.cells" not in at.query_params
    assert at.query_params.get("datasets.data") == "draw"  # the rest of the link is still written
    assert "datasets.cells is too long for the link" in _notes(at)
    at.run()
    assert _notes(at).count("datasets.cells is too long") == 1  # said once
    _close(at)


def test_a_pages_settings_stay_in_that_pages_link():
    """A seed changed on Compare is in Compare's link, and not in the link of the next page the user opens."""
    at = AppTest.from_file(os.path.join(ROOT, "streamlit_app.py"), default_timeout=180)
    at.query_params["compare.families"] = "gmm"
    at.run()
    at.number_input(key="compare.seed").set_value(7).run()
    assert at.query_params.get("compare.seed") == "7"
    at.switch_page("pages/datasets.py").run()
    assert not at.exception
    assert not [k for k in at.query_params if k.startswith("compare.")], dict(at.query_params)
    _close(at)
