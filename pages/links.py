"""The link's bookkeeping (which widgets live in st.query_params, notes about bad values) for
pages/ui.py and the router. Only streamlit is imported here: the router reads lecture mode from the
link before a page runs, and anything heavier would delay the page's first paint."""

import re

import streamlit as st

URL_KEYS = "_url_keys"  # session_state: page -> {widget key -> its default} (sync_url writes what differs)
URL_NOTES = "_url_notes"  # session_state: sentences about link values that were ignored
LECTURE = "lecture"
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def parse_bool(raw: str) -> bool:
    """A link's true/false (also 1/0, yes/no, on/off); ValueError otherwise."""
    if raw.lower() not in _TRUE + _FALSE:
        raise ValueError("not true or false")
    return raw.lower() in _TRUE


def register(key: str, default) -> None:
    """Have `ui.sync_url` write this widget's value into this page's link when it differs from the default
    (per page: a setting changed on Compare does not follow the user into the GAN page's link)."""
    st.session_state.setdefault(URL_KEYS, {}).setdefault(page_id(), {})[key] = default


def registered() -> dict:
    """This page's registered keys and their defaults."""
    return st.session_state.get(URL_KEYS, {}).get(page_id(), {})


MAX_VALUE = 1000  # characters: a longer link value is ignored (the app writes none that long)
MAX_QUERY = 2000  # characters of query the app writes into a link at most


def page_id() -> str:
    """Which page this run draws (its script's hash): notes belong to one page."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.page_script_hash if ctx is not None else ""


def notes() -> list[str]:
    """This page's notes about ignored link values: kept until dismissed or the page changes."""
    book = st.session_state.get(URL_NOTES)
    if not isinstance(book, dict) or book.get("page") != page_id():
        book = st.session_state[URL_NOTES] = {"page": page_id(), "notes": []}
    return book["notes"]


def note(msg: str) -> None:
    """A sentence the page shows near its top (`ui.sync_url`) until the user dismisses it."""
    got = notes()
    if msg not in got:
        got.append(msg)


def dismiss() -> None:
    notes().clear()


def literal(text: str) -> str:
    """Markdown that shows `text` as it is: plain when it has no character Markdown could act on, else
    a code span (its fence longer than any run of backticks inside), so no link, image, formula,
    emphasis or HTML from a link value is ever rendered."""
    text = text.replace("\n", " ").replace("\r", " ")
    if re.fullmatch(r"[A-Za-z0-9 '\".,;=+\-]*", text):
        return text
    fence = "`" * (max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def shown(raw: str, limit: int = 40) -> str:
    """A link value for a note: its repr, cut to `limit` characters, with its length when cut."""
    r = repr(raw)
    return r if len(r) <= limit else f"{r[: limit - 4]}...' ({len(raw):,} characters)"


def raw_value(key: str) -> str:
    """The link's value for key; ValueError when it is given more than once or is too long."""
    vals = st.query_params.get_all(key)
    if len(vals) > 1:
        raise ValueError(f"it is given {len(vals)} times")
    raw = vals[0] if vals else ""
    if len(raw) > MAX_VALUE:
        raise ValueError("it is too long")
    return raw


def ignored(key: str, raw: str, reason: object) -> None:
    """Note that a link value was ignored, with the value and the reason shown as plain text."""
    reason = str(reason)
    reason = reason if len(reason) <= 200 else reason[:197] + "..."
    note(f"Ignored {key}={literal(shown(raw))} from the link: {literal(reason)}")


def lecture_from_link() -> None:
    """Lecture mode from the link (?lecture=true), read before the page runs: the switch is drawn after
    the page, and the page's sync_url rewrites the link with the keys it knows by then."""
    register(LECTURE, False)
    if LECTURE in st.session_state or LECTURE not in st.query_params:
        return
    raw = st.query_params[LECTURE]
    try:
        st.session_state[LECTURE] = parse_bool(raw_value(LECTURE))
    except ValueError as e:
        ignored(LECTURE, raw, e)
