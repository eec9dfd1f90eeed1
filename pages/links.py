"""The link's bookkeeping (which widgets live in st.query_params, notes about bad values) for
pages/ui.py and the router. Only streamlit is imported here: the router reads lecture mode from the
link before a page runs, and anything heavier would delay the page's first paint."""

import streamlit as st

URL_KEYS = "_url_keys"  # session_state: widget key -> its default (sync_url writes what differs)
URL_NOTES = "_url_notes"  # session_state: sentences about link values that were ignored
LECTURE = "lecture"
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def parse_bool(raw: str) -> bool:
    """A link's true/false (also 1/0, yes/no, on/off); ValueError otherwise."""
    if raw.lower() not in _TRUE + _FALSE:
        raise ValueError("not true or false")
    return raw.lower() in _TRUE


def register(key: str, default) -> None:
    """Have `ui.sync_url` write this widget's value into the link when it differs from the default."""
    st.session_state.setdefault(URL_KEYS, {})[key] = default


def note(msg: str) -> None:
    """A sentence the page shows near its top (`ui.sync_url`)."""
    notes = st.session_state.setdefault(URL_NOTES, [])
    if msg not in notes:
        notes.append(msg)


def lecture_from_link() -> None:
    """Lecture mode from the link (?lecture=true), read before the page runs: the switch is drawn after
    the page, and the page's sync_url rewrites the link with the keys it knows by then."""
    register(LECTURE, False)
    if LECTURE in st.session_state or LECTURE not in st.query_params:
        return
    raw = st.query_params[LECTURE]
    try:
        st.session_state[LECTURE] = parse_bool(raw)
    except ValueError as e:
        note(f"Ignored {LECTURE}={raw!r} from the link: {e}")
