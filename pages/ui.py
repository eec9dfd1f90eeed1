"""Shared page pieces: the session's runner, dataset and config widgets, play/pause controls, links.

Every page follows one pattern:

    runner = ui.get_runner()                        # this session's runs on the shared trainer workers
    ds = ui.dataset_picker("flows")                 # widgets -> Dataset (or None after an error)
    cfg = ui.config_form(Flow.Config, "flows")      # widgets -> frozen Config
    rid = ui.ensure_run(runner, "flows/flow", RunSpec(...))
    ui.controls(runner, [rid], "flows")             # play / pause / step / reset
    @ui.live(runner)                                # st.fragment(run_every=...) while training runs
    def view(): snap = runner.snapshot(rid); ui.chart(..., snap.time, lambda: viz...(snap))
    view()
    ui.sync_url()                                   # the whole page state into the link

Widgets take their first value from the link (st.query_params) when it has one; a value that does
not parse or is out of range is ignored with a visible note.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from typing import Any, Callable

import numpy as np
import streamlit as st

from lab.base import Config, ConfigError, validate_value
from lab.data import (
    BRUSH_GRID,
    DATASETS,
    DRAW_BOUNDS,
    DataError,
    Dataset,
    dataset_fields,
    decode_paint,
    encode_paint,
    load_points_csv,
    make_dataset,
    points_from_paint,
)
from lab.live.session import JobError, LiveSession
from lab.snapshot import Snapshot
from lab.spec import RunSpec
from lab.viz.common import fast_figure, spec_json
from pages import links
from pages.live_chart import live_chart_component

# seconds between live figure updates: family pages draw 6-10 figures per update (~15 ms of plotly each,
# holding the GIL the trainer needs) and get a picture snapshot about twice a second, so 0.5 s; the
# Compare page draws light panels (fast figures) and aims at >= 4 updates a second
LIVE_EVERY = 0.5
COMPARE_EVERY = 0.2
FEED_EVERY = 0.2  # seconds between a fed panel's fetches (lab.live.feed); its page reruns only every second


def _use_the_router() -> None:
    """A direct link (/gan) opened before any session ran the router finds Streamlit still in its old
    pages-directory mode, which runs the page alone: no router, no wide layout, file names as
    navigation. Leave that mode and rerun: the router runs and picks the same page (same url path)."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


_use_the_router()
_URL_NOTES = links.URL_NOTES


# ---------------------------------------------------------------------------------------------
# The session's runs: on the server's trainer worker processes (lab.live)
# ---------------------------------------------------------------------------------------------


def _alive_predicate() -> Callable[[], bool]:
    """True while this browser session exists; the pool frees the session's runs when it says False."""
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is None or not Runtime.exists():
            return lambda: True
        sid, rt = ctx.session_id, Runtime.instance()
        return lambda: rt.is_active_session(sid)
    except Exception:  # AppTest and bare runs have no runtime
        return lambda: True


def get_runner() -> LiveSession:
    """This browser session's runs (the worker pool is shared by every session of the server)."""
    if "runner" not in st.session_state:
        st.session_state["runner"] = LiveSession(alive=_alive_predicate())
    return st.session_state["runner"]


def ensure_run(runner: LiveSession, run_id: str, spec: RunSpec, many: bool = False) -> str:
    """Keep run_id in step with the widgets: rebuild on a change, lr and budget change live.
    `many`: the page shows more than two runs (small panels get cheaper, more frequent pictures)."""
    try:
        runner.ensure(run_id, spec, many=many)
    except (ConfigError, DataError, ValueError) as e:
        st.error(str(e))
        return ""
    return run_id


# ---------------------------------------------------------------------------------------------
# Links: widget values <-> st.query_params
# ---------------------------------------------------------------------------------------------


_note = links.note


def url_default(key: str, default: Any, check: Callable[[str], Any]) -> Any:
    """The widget's starting value: from the link when it has a valid one, else the default.

    Registers the key so `sync_url` writes it back. `check` turns the link's text into a value or
    raises ValueError with a reason.
    """
    links.register(key, default)
    if key not in st.session_state and key in st.query_params:
        raw = st.query_params[key]
        try:
            st.session_state[key] = check(links.raw_value(key))
        except (ValueError, TypeError, OverflowError, ConfigError, DataError) as e:
            links.ignored(key, raw, e)
    return st.session_state.get(key, default)


def linked(
    key: str, default: Any, choices: list | None = None, lo: float | None = None, hi: float | None = None
) -> None:
    """Put a plain widget (created next, with this key) into the link: seed it from the link and
    have `sync_url` write it back. The link's text is cast to the default's type (a list is
    comma-separated) and checked against choices / [lo, hi]; a bad value is ignored with a note."""

    def cast(raw: str, like: Any) -> Any:
        if isinstance(like, bool):
            return links.parse_bool(raw)
        if isinstance(like, (int, float)):
            try:
                v = type(like)(raw.strip())
            except (ValueError, OverflowError):
                raise ValueError("not a whole number" if isinstance(like, int) else "not a number") from None
            if not math.isfinite(v):
                raise ValueError("not a finite number")
            return v
        return raw

    def check(raw: str) -> Any:
        if isinstance(default, (list, tuple)):
            like = default[0] if default else (choices[0] if choices else "")
            vals = [cast(r, like) for r in raw.split(",") if r != ""]
            bad = [v for v in vals if choices is not None and v not in choices]
            if bad:
                raise ValueError(f"not one of the choices: {', '.join(map(str, bad))}")
            return vals
        v = cast(raw, default)
        if choices is not None and v not in choices:
            raise ValueError("not one of the choices")
        if (lo is not None and not v >= lo) or (hi is not None and not v <= hi):
            raise ValueError(f"not between {lo} and {hi}")
        return v

    value = url_default(key, default, check)
    if key not in st.session_state and value != default:
        st.session_state[key] = value


def url_notes() -> None:
    """A place near the top of the page where `sync_url` shows what the link asked for that could
    not be used (the widgets that find out are drawn later)."""
    st.session_state["_url_notes_slot"] = (links.page_id(), st.empty())


def sync_url() -> None:
    """Write every registered widget that differs from its default into the link (and show notes).

    The link stays under links.MAX_QUERY characters of query: a value that would make it longer (a
    big drawing, a long text) is left out, with one note. Notes stay until dismissed or the page changes."""
    from urllib.parse import urlencode

    keys: dict[str, Any] = links.registered()
    want = {}
    for k, default in keys.items():
        v = st.session_state.get(k, default)
        if v != default and v is not None:
            want[k] = _fmt(v)
    told = st.session_state.setdefault("_url_too_long", set())
    while want and len(urlencode(want)) > links.MAX_QUERY:
        k = max(want, key=lambda k: len(urlencode({k: want[k]})))
        del want[k]
        if k not in told:
            told.add(k)
            _note(
                f"{k} is too long for the link ({links.MAX_QUERY:,} characters at most), "
                "so the link leaves it out."
            )
    have = {k: st.query_params[k] for k in st.query_params}
    if have != want:
        st.query_params.from_dict(want)
    page, slot = st.session_state.pop("_url_notes_slot", (None, None))
    notes = links.notes()
    if notes:
        box = (slot if page == links.page_id() else None) or st.empty()
        with box.container():
            st.info("  \n".join(notes))
            st.button("Dismiss", key="_url_notes_dismiss", on_click=links.dismiss, icon=":material/close:")


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_fmt(x) for x in v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


# ---------------------------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------------------------


def _log_grid(lo: float, hi: float, default: float) -> list[float]:
    vals = {float(f"{m * 10.0**e:.3g}") for e in range(-7, 4) for m in (1, 2, 5)}
    vals = sorted(v for v in vals if lo <= v <= hi) + [default]
    return sorted(set(vals))


def field_widget(
    f: dataclasses.Field, key: str, default: Any, label: str | None = None, disabled: bool = False
) -> Any:
    """One widget for one config/dataset field, from its metadata (choices, min, max, log, help).

    The widget's value lives in st.session_state[key], seeded from the link or the default, so
    widgets never get a second, conflicting default."""
    m = f.metadata
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    label = label or f.name.replace("_", " ")
    value = url_default(key, default, lambda raw: validate_value(f, raw))
    st.session_state.setdefault(key, value)
    kw = dict(key=key, help=m.get("help") or None, disabled=disabled)
    if m.get("choices"):
        opts = list(m["choices"])
        if st.session_state[key] not in opts:
            st.session_state[key] = opts[0]
        return st.selectbox(label, opts, index=opts.index(st.session_state[key]), **kw)
    if t == "bool":
        return st.toggle(label, **kw)
    lo, hi = m.get("min"), m.get("max")
    if t == "float" and m.get("log") and lo and hi:
        opts = _log_grid(lo, hi, float(st.session_state[key]))
        return st.select_slider(label, opts, format_func=lambda v: f"{v:g}", **kw)
    if t == "float" and lo is not None and hi is not None:
        step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9)) - 2)
        st.session_state[key] = float(st.session_state[key])
        return st.slider(label, float(lo), float(hi), step=float(step), **kw)
    if t == "int":
        st.session_state[key] = int(st.session_state[key])
        return int(st.number_input(label, min_value=lo, max_value=hi, step=1, **kw))
    if t == "float":
        st.session_state[key] = float(st.session_state[key])
        return float(st.number_input(label, min_value=lo, max_value=hi, **kw))
    return st.text_input(label, **kw)


def config_form(
    cls: type[Config],
    prefix: str,
    only: list[str] | None = None,
    overrides: dict | None = None,
    skip: tuple = (),
) -> Config:
    """Widgets for a family's config fields (all, or `only` these, less `skip`); returns the config.

    `overrides` fixes fields without widgets (a preset's values). Pass the model class's
    `unused_fields` as `skip` so a family shows no widget it ignores."""
    values = dict(overrides or {})
    defaults = cls()
    for f in dataclasses.fields(cls):
        if f.name in values or f.name in skip or (only is not None and f.name not in only):
            continue
        values[f.name] = field_widget(f, f"{prefix}.{f.name}", getattr(defaults, f.name))
    try:
        return cls(
            **{
                k: validate_value(next(g for g in dataclasses.fields(cls) if g.name == k), v)
                for k, v in values.items()
            }
        )
    except ConfigError as e:
        st.error(str(e))
        return defaults


def dataset_picker(
    prefix: str, default: str = "moons", allow_upload: bool = True, params: bool = True
) -> Dataset | None:
    """Choose a built-in dataset and its parameters, or upload a CSV. Errors are one sentence."""
    names = list(DATASETS) + (["upload CSV", "draw"] if allow_upload else [])
    key = f"{prefix}.data"
    st.session_state.setdefault(key, url_default(key, default, lambda raw: _known(raw, names)))
    # index= repeats the state's value: without it the browser sometimes showed the default label
    name = st.selectbox(
        "dataset",
        names,
        index=names.index(st.session_state[key]) if st.session_state[key] in names else 0,
        key=key,
        format_func=lambda n: (
            DATASETS[n].title if n in DATASETS else {"draw": "Draw your own"}.get(n, "Your points (CSV)")
        ),
    )
    if name == "draw":
        return draw_points(prefix)
    if name == "upload CSV":
        up = st.file_uploader(
            "CSV with two numeric columns (x, y), header optional",
            type=["csv", "txt"],
            key=f"{prefix}.upload",
        )
        if up is None:
            st.caption("Upload a file to train on your own points.")
            return None
        cache = st.session_state.setdefault("_uploads", {})
        ck = (up.name, up.size, getattr(up, "file_id", ""))
        if ck not in cache:
            try:
                cache[ck] = load_points_csv(up.getvalue(), label=up.name)
            except DataError as e:
                cache[ck] = e
        got = cache[ck]
        if isinstance(got, DataError):
            st.error(str(got))
            return None
        if len(got.incomplete):  # rows with an empty cell: gmm and ar learn from them, the others refuse them
            st.caption(f"{len(got.points):,} points and {len(got.incomplete):,} with a missing coordinate")
            keep = st.radio("rows with an empty cell", ["use", "drop"], horizontal=True, key=f"{prefix}.rows")
            return got if keep == "use" else got.without_incomplete()
        st.caption(f"{len(got.points):,} points from {up.name}")
        return got
    values = {}
    if params:
        base = DATASETS[name]()
        for f in dataset_fields(name):
            values[f.name] = field_widget(f, f"{prefix}.{name}.{f.name}", getattr(base, f.name))
    try:
        return _cached_dataset(name, tuple(sorted(values.items())))
    except DataError as e:
        st.error(str(e))
        return None


@st.cache_resource(show_spinner=False)
def _brush_component():
    """The brush (pages/brush.js): a canvas to paint a distribution on, with brush size, density, eraser, clear."""
    with open(os.path.join(os.path.dirname(__file__), "brush.js"), encoding="utf-8") as f:
        return st.components.v2.component("lab_brush", js=f.read(), isolate_styles=False)


def draw_points(prefix: str) -> Dataset | None:
    """Points painted in the browser with a brush; each painted cell becomes a few jittered points
    (lab.data.points_from_paint). The painting lives in the link, deflated (an old link's grid cells too)."""
    key = f"{prefix}.cells"
    st.session_state.setdefault(key, url_default(key, "", lambda raw: encode_paint(decode_paint(raw))))
    # the brush's last stroke (its state, read before it is drawn so this run already shows its points)
    state = st.session_state.get(f"{prefix}.brush")
    painted = state.get("levels") if hasattr(state, "get") else getattr(state, "levels", None)
    if painted and painted != st.session_state.get(f"{key}.seen"):
        st.session_state[f"{key}.seen"] = painted
        with contextlib.suppress(DataError):
            st.session_state[key] = encode_paint(np.frombuffer(painted.encode(), np.uint8) - ord("0"))
    levels = decode_paint(st.session_state[key])
    st.caption(
        "Paint with the mouse (or a finger): brush size, density, eraser and clear are above the canvas."
    )
    data = points_from_paint(levels) if levels.any() else None
    shown = data.points[:: max(1, len(data.points) // 3000)] if data is not None else np.zeros((0, 2))
    _brush_component()(
        data={
            "grid": BRUSH_GRID,
            "bounds": list(DRAW_BOUNDS),
            "levels": "".join(map(str, levels.tolist())),
            "points": np.round(shown, 3).ravel().tolist(),
        },
        key=f"{prefix}.brush",
        on_levels_change=lambda: None,
    )
    if data is None:
        st.caption("Nothing drawn yet.")
        return None
    st.caption(f"Drawn: {len(data.points):,} points.")
    if len(st.session_state[key]) > 1000:
        st.caption("This drawing is too big for the link; it stays in this session only.")
    return data


def multiselect_keys(label: str, options: list[str], key: str) -> list[str]:
    """A multiselect whose choice lives in the link as a comma-separated list (default: all)."""

    def check(raw: str) -> str:
        keys = [k for k in raw.split(",") if k]
        bad = [k for k in keys if k not in options]
        if bad:
            raise ValueError(f"unknown {', '.join(bad)}")
        return ",".join(keys)

    text = url_default(key, ",".join(options), check)
    # the choice itself lives in st.session_state[key] (a plain key Streamlit never cleans up);
    # the widget starts from it whenever its own state is new
    picked = st.multiselect(
        label, options, default=[k for k in text.split(",") if k in options], key=f"{key}.ms"
    )
    st.session_state[key] = ",".join(picked)
    return picked


def _known(raw: str, names: list[str]) -> str:
    if raw not in names:
        raise ValueError(f"there is no dataset '{raw}'")
    return raw


@st.cache_resource(max_entries=64, show_spinner=False)
def _cached_dataset(name: str, params: tuple) -> Dataset:
    """One object per (name, params): its quadrature cache is built once and shared by sessions."""
    return make_dataset(name, **dict(params))


@st.cache_data(max_entries=64, show_spinner=False)
def true_density(name: str, params: tuple, size: int = 96) -> dict:
    """The true log-density on a grid over the dataset's bounds (cached across sessions)."""
    ds = _cached_dataset(name, params)
    x0, x1, y0, y1 = ds.bounds()
    gx, gy = np.linspace(x0, x1, size), np.linspace(y0, y1, size)
    xx, yy = np.meshgrid(gx, gy)
    return {
        "x": gx,
        "y": gy,
        "log_prob": ds.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(size, size),
    }


@st.cache_data(max_entries=64, show_spinner=False)
def _entropy(name: str, params: tuple) -> float:
    ds = _cached_dataset(name, params)
    return float(-ds.log_prob(ds.sample(20_000, 1)).mean())


def entropy(ds: Dataset) -> float:
    """Monte Carlo entropy of a built-in density (20,000 points), cached."""
    return _entropy(ds.name, tuple(sorted(ds.params().items())))


def truth_grid(ds: Dataset, size: int = 96) -> dict | None:
    if not ds.has_density:
        return None
    return true_density(ds.name, tuple(sorted(ds.params().items())), size)


def _field(name: str, type_: str, default: Any, **meta) -> dataclasses.Field:
    """A stand-alone field (for page settings that are not part of a model config)."""
    f = dataclasses.field(default=default, metadata={"help": "", **meta})
    f.name, f.type = name, type_
    return f


def budget_widget(prefix: str, seconds: float = 30.0) -> float | None:
    """A wall-clock training budget in seconds (0 trains until paused)."""
    f = _field(
        "seconds",
        "float",
        seconds,
        min=0.0,
        max=600.0,
        help="wall-clock training budget; 0 trains until you pause",
    )
    s = field_widget(f, f"{prefix}.seconds", seconds, label="budget (s)")
    return float(s) if s and s > 0 else None


def seed_widget(prefix: str, default: int = 0) -> int:
    f = _field(
        "seed", "int", default, min=0, max=2**31 - 1, help="same seed, same data, same model, same samples"
    )
    return int(field_widget(f, f"{prefix}.seed", default))


# ---------------------------------------------------------------------------------------------
# Lecture mode: controls hidden (the sidebar collapsed), figures enlarged
# ---------------------------------------------------------------------------------------------


def lecture_mode() -> bool:
    return bool(st.session_state.get("lecture", False))


def fig_height(normal: int = 360) -> int:
    return int(normal * 1.6) if lecture_mode() else normal


def lecture_toggle() -> None:
    """The router's switch at the top of every page: in lecture mode the sidebar's controls are
    hidden (navigation stays), type is larger and pages draw bigger figures."""
    f = _field("lecture", "bool", False, help="hide the controls and enlarge the figures, for a room")
    field_widget(f, "lecture", False, label="Lecture mode")
    if lecture_mode():
        st.markdown(
            "<style>[data-testid='stSidebarUserContent']{display:none} html{font-size:19px}</style>",
            unsafe_allow_html=True,
        )


# ---------------------------------------------------------------------------------------------
# Exports (built only when the button is pressed)
# ---------------------------------------------------------------------------------------------


def figure_download(build: Callable[[], Any], name: str, key: str) -> None:
    """Interactive HTML of a figure, self-contained (works offline in a lecture hall). The figure is built
    at the click: a plotly Figure for each of nine runs on every rerun made Pause wait for them."""
    st.download_button(
        "figure (HTML)",
        data=lambda: build().to_html(include_plotlyjs=True, full_html=True),
        file_name=f"{name}.html",
        mime="text/html",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


def samples_download(samples, name: str, key: str) -> None:
    def csv() -> str:
        import io

        buf = io.StringIO()
        np.savetxt(buf, np.asarray(samples), delimiter=",", header="x,y", comments="", fmt="%.8g")
        return buf.getvalue()

    st.download_button(
        "samples (CSV)",
        data=csv,
        file_name=f"{name}-samples.csv",
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


def weights_download(runner: LiveSession, run_id: str, name: str, key: str) -> None:
    def data() -> bytes:  # taken by the run's worker between training steps
        try:
            return runner.weights(run_id)
        except JobError:
            return b""

    st.download_button(
        "weights (safetensors)",
        data=data,
        file_name=f"{name}.safetensors",
        mime="application/octet-stream",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


# ---------------------------------------------------------------------------------------------
# Controls and the live fragment
# ---------------------------------------------------------------------------------------------


SPEEDS = [
    "full",
    "100",
    "30",
    "10",
    "3",
    "1",
]  # training steps per second (wall time) for every run on a page


def controls(runner: LiveSession, ids: list[str], prefix: str) -> None:
    """Play / pause / step / reset and the speed for these runs, plus the runner's state.

    A fragment of its own: Pause reruns only this bar, so 'paused' shows as soon as the worker has it (a
    full rerun of a crowded Compare page sent it after the whole sidebar: 0.2-0.3 s on a busy 2-core machine);
    the live view's next run then settles the page. Train, Step, Reset and a new speed rerun the page (the live
    views start or stop refreshing, stills appear, the link follows the speed)."""
    ids = [i for i in ids if i]
    key = f"{prefix}.speed"
    linked(key, "full", choices=SPEEDS)

    @st.fragment
    def bar() -> None:
        # (label, icon, key, help, command, whole page rerun): Pause reruns only this bar
        buttons = [
            ("Train", ":material/play_arrow:", "play", None, lambda: runner.play(ids), True),
            ("Pause", ":material/pause:", "pause", None, lambda: runner.pause(ids), False),
            ("Step", ":material/skip_next:", "step", "one training step", lambda: runner.step(ids, 1), True),
            (
                "Reset",
                ":material/replay:",
                "reset",
                "back to step 0 (same seed)",
                lambda: runner.reset(ids),
                True,
            ),
        ]
        for col, (label, icon, name, hint, command, whole_page) in zip(st.columns(4), buttons):
            kind = "primary" if name == "play" else "secondary"
            if col.button(label, icon=icon, key=f"{prefix}.{name}", width="stretch", help=hint, type=kind):
                command()
                if whole_page:
                    st.rerun()
        # the speed on the state line's row: a fifth column squeezed the buttons' labels where controls share a
        # page's half
        c = st.columns([1.2, 2.8], vertical_alignment="center")
        speed = c[0].selectbox(
            "speed",
            SPEEDS,
            key=key,
            label_visibility="collapsed",
            format_func=lambda v: "full speed" if v == "full" else f"{v} step{'s' if v != '1' else ''}/s",
            help="slow motion: at most this many training steps per second, to watch a lesson unfold",
        )
        runner.set_speed(ids, None if speed == "full" else float(speed))
        applied = f"_speed_on_page.{key}"
        if st.session_state.get(applied, speed) != speed:
            st.session_state[applied] = speed
            st.rerun()  # the link (written at the end of a page run) follows the new speed
        st.session_state[applied] = speed

        # steps and speed move while training: the page's live view redraws this line in its own fragment runs
        # (`live`), so a page has one fragment refreshing, not two (every fragment run costs the server)
        slot = c[1].empty()
        slot.caption(state_line(runner, ids))
        st.session_state["_state_line"] = (slot, ids)

    bar()


def state_line(runner: LiveSession, ids: list[str]) -> str:
    parts = []
    for i in ids:
        s = runner.snapshot(i)
        if s:
            parts.append(f"{s.title}: step {s.step:,} · {s.steps_per_second:.0f} steps/s · {s.status}")
    return " | ".join(parts)


def live(runner: LiveSession, every: float = LIVE_EVERY, with_state: bool = True):
    """Decorator: run the view as a fragment that refreshes while training runs, and once more at
    the end (a full rerun, so buttons and the state line catch up). `with_state`: the fragment also
    redraws the state line of the page's controls (the page's main live view does)."""

    def wrap(fn):
        flag = f"_live_was_running.{fn.__qualname__}"
        line = st.session_state.pop("_state_line", None) if with_state else None
        running = runner.busy
        # this is a full run, which redraws everything anyway: only a fragment run that sees training end
        # asks for one (three live views each asking made Pause restart the page three times)
        st.session_state[flag] = running

        @st.fragment(run_every=every * runner.pool.crowding() if running else None)
        def frag():
            if line is not None:
                slot, ids = line
                slot.caption(state_line(runner, ids))
            fn()
            now = runner.busy
            if st.session_state.get(flag) and not now:
                st.session_state[flag] = False
                st.rerun()
            st.session_state[flag] = now

        return frag

    return wrap


# Live charts. st.plotly_chart gives an element an id that hashes the figure, so every update remounts
# it: the browser runs a full Plotly.newPlot (~50-130 ms a panel on a busy 2-core machine, where six
# panels at 4 updates a second would need more than a core) and the user's zoom is lost. `live_chart`
# mounts a small component (pages/live_chart.js) once per key and updates it in place with Plotly.react,
# so a zoom or pan survives (the figures carry a uirevision); a panel's samples go on a canvas over the
# plot and a points-and-title update only relayouts the title (~5 ms a panel). The component and its
# plotly.js: pages/live_chart.py.
_live_chart_component = live_chart_component  # pages/live_chart.py (no heavy imports: the router uses it)


def live_chart(fig, key: str, where=None, feed: str | None = None, live: bool = False) -> None:
    """A plotly figure, or a plain spec such as `density_spec`'s, that a live view redraws in place (see
    above), in `where` (a column or container) or here; st.plotly_chart where it cannot. `feed`: the
    panel's address in lab.live.feed, which the chart fetches by itself while `live` (no rerun needed)."""
    with where if where is not None else contextlib.nullcontext():
        component = _live_chart_component()
        if component is None:
            if isinstance(fig, str):
                import plotly.io as pio

                fig = pio.from_json(fig, skip_invalid=True)
            st.plotly_chart(fig if not isinstance(fig, dict) else fast_figure(**fig), key=key)
            return
        if fig is None and feed is not None:
            # a fed panel while its run trains: the page sends only where its pictures are, the same few bytes
            # on every rerun, instead of each new picture (~30 KB a panel) that the chart has already fetched,
            # which the browser decoded and rendered once a second for nothing
            component(data=json.dumps({"feed": feed, "live": True, "every": _feed_every()}), key=key)
            return
        # a figure from `cached_figure` comes back on every refresh: serialise it once
        sent = st.session_state.setdefault("_live_chart_json", {})
        hit = sent.get(key)
        if hit is not None and hit[0] is fig:
            spec = hit[1]
        elif isinstance(fig, str):  # a spec already written (a fed panel's, with its time)
            spec = fig
        elif isinstance(fig, dict):
            spec = spec_json(fig)
        else:
            import plotly.io as pio

            for axis in [*fig.select_xaxes(), *fig.select_yaxes()]:
                if (
                    axis.automargin is None
                ):  # what st.plotly_chart's theme did: room for tick labels outside small margins
                    axis.automargin = True
            spec = pio.to_json(fig, validate=False)
        sent[key] = (fig, spec)
        if feed is not None:  # the feed's pictures and the page's carry their time ("v"): the newest stays
            spec = (
                spec[:-1] + f',"feed":{json.dumps(feed)},"live":{json.dumps(live)},"every":{_feed_every()}}}'
            )
        component(data=spec, key=key)


def _feed_every() -> int:
    """Milliseconds between a fed panel's fetches: FEED_EVERY, longer on a crowded server."""
    return int(1000 * FEED_EVERY * get_runner().pool.crowding())


def chart(
    key: str, version, build: Callable[[], Any], where=None, feed: str | None = None, live: bool = False
) -> None:
    """A live chart whose figure is built only when `version` changes (what the figure shows: a
    snapshot's time for its samples, `views_time` for a family's own pictures, a widget's value): a live
    view re-runs every 0.5 s, and building a plotly figure holds the GIL that training needs."""
    if feed is not None and live and _live_chart_component() is not None:
        live_chart(None, key=key, where=where, feed=feed, live=True)  # the chart fetches its own pictures
        return
    live_chart(cached_figure(key, version, build), key=key, where=where, feed=feed, live=live)


def cached_figure(key: str, version, build):
    """The figure built for this version (a snapshot's time), built again only when it changes:
    a live page redraws several times a second, and building plotly figures holds the GIL that training needs."""
    cache = st.session_state.setdefault("_figures", {})
    hit = cache.get(key)
    if hit is None or hit[0] != version:
        hit = (version, build())
        cache[key] = hit
    return hit[1]


def drawn(snap: Snapshot | None) -> bool:
    """True when the run has a picture to draw; else says why not (building, or why its build failed)."""
    if snap is None:
        return False
    if snap.samples is None:
        if snap.status == "building":
            st.caption(f"{snap.title}: building…")
        else:
            status(snap)
        return False
    return True


def status(snap: Snapshot | None) -> None:
    """A diverged/stopped run's sentence, where the user will see it."""
    if not snap:
        return
    if snap.status in ("diverged", "error"):
        st.error(snap.message)
    elif snap.status == "stopped" and snap.message:
        st.warning(snap.message)
    elif snap.status == "done" and snap.message:
        st.caption(f"✔ {snap.message}")


def metric_row(snap: Snapshot | None, keys: list[tuple[str, str, str]]) -> None:
    """st.metric for (label, key, format) of the snapshot's latest metrics."""
    if not snap:
        return
    m = snap.latest_metrics
    cols = st.columns(len(keys))
    for col, (label, k, fmt) in zip(cols, keys):
        v = m.get(k)
        col.metric(label, "—" if v is None else format(v, fmt))


def recorder(runner: LiveSession, ids: list[str], labels: dict[str, str], bounds, prefix: str) -> None:
    """Record these runs' panels while they train (the page process keeps the pictures as they arrive:
    training pays nothing) and export one run, or all of them as one page, as a GIF, an MP4 or an HTML player."""
    st.markdown("**Record the panels**")
    on = st.toggle(
        "record while training",
        key=f"{prefix}.record",
        help="keeps every panel's pictures (at most 5 a second, thinned to stay under 600 frames) for an animation",
    )
    runner.record(ids, on)
    recordings = {labels[i]: r for i in ids if (r := runner.recording(i)) is not None}
    if not on and not recordings:
        return
    # frames keep arriving between full reruns (and once more after Pause, with the paused picture): while
    # recording, the count and the download's state refresh on their own, not only when the page reruns
    st.fragment(run_every=runner.pool.crowding() if on else None)(_recorder_body)(
        recordings, ids, bounds, prefix
    )


def _recorder_body(recordings: dict, ids: list[str], bounds, prefix: str) -> None:
    from lab import record as R

    recs = {k: r.frames for k, r in recordings.items()}
    st.caption(", ".join(f"{k}: {len(v)} frames" for k, v in recs.items()) or "no frames yet: press Train")
    c = st.columns([2, 1, 1.4])
    whole = "the whole page" if len(ids) > 1 else None
    what = c[0].selectbox("what", [*([whole] if whole else []), *recs], key=f"{prefix}.record.what")
    if what is None:
        return
    kinds = ["GIF", "MP4"] + ([] if what == whole else ["HTML"])
    kind = c[1].selectbox("format", kinds, key=f"{prefix}.record.kind")

    def data() -> bytes:  # at the click: every frame recorded by then
        recs = {k: r.frames for k, r in recordings.items()}
        try:
            if kind == "HTML":
                return R.to_html(recs[what], bounds, what).encode()
            ims = R.page_images(recs, bounds) if what == whole else R.images(recs[what], bounds, what)
            return R.to_gif(ims) if kind == "GIF" else R.to_mp4(ims)
        except ValueError:
            return b""

    ext = {"GIF": "gif", "MP4": "mp4", "HTML": "html"}[kind]
    with c[2]:
        st.download_button(
            f"download ({kind})",
            data=data,
            file_name=f"{what.replace(' ', '-')}.{ext}",
            mime={"GIF": "image/gif", "MP4": "video/mp4", "HTML": "text/html"}[kind],
            key=f"{prefix}.record.dl",
            icon=":material/movie:",
            on_click="ignore",
            disabled=not recs,
        )


def record_expander(runner: LiveSession, labels: dict[str, str], bounds, prefix: str) -> None:
    """A family page's recorder (its runs' density panels as an animation), folded away until wanted."""
    ids = [i for i in labels if i]
    with st.expander("Record as an animation (GIF, MP4, HTML player)"):
        recorder(runner, ids, labels, bounds, prefix)


def lecture_notes(*keys: str) -> None:
    """The lecture's formulas for these families (open by default in lecture mode)."""
    from lab.lectures import NOTES

    with st.expander("The formulas from the lecture", expanded=lecture_mode()):
        for key in keys:
            title, items = NOTES[key]
            st.markdown(f"**{title}**")
            for text, latex in items:
                st.markdown(text)
                if latex:
                    st.latex(latex)
