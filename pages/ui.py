"""Shared page pieces: the session's runner, dataset and config widgets, play/pause controls, links.

Every page follows one pattern:

    runner = ui.get_runner()
    ds = ui.dataset_picker("flows")                 # widgets -> Dataset (or None after an error)
    cfg = ui.config_form(Flow.Config, "flows")      # widgets -> frozen Config
    rid = ui.ensure_run(runner, "flows/flow", RunSpec(...))
    ui.controls(runner, [rid], "flows")             # play / pause / step / reset
    @ui.live(runner)                                # st.fragment(run_every=...) while training runs
    def view(): snap = runner.snapshot(rid); st.plotly_chart(viz...(snap))
    view()
    ui.sync_url()                                   # the whole page state into the link

Widgets take their first value from the link (st.query_params) when it has one; a value that does
not parse or is out of range is ignored with a visible note.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import streamlit as st

from lab.base import Config, ConfigError, validate_value
from lab.data import DATASETS, DataError, Dataset, dataset_fields, load_points_csv, make_dataset
from lab.runner import RunSpec, SessionRunner

LIVE_EVERY = 0.25  # seconds between live figure updates
_URL_KEYS = "_url_keys"
_URL_NOTES = "_url_notes"


# ---------------------------------------------------------------------------------------------
# The session's runner: one background thread per browser session
# ---------------------------------------------------------------------------------------------


def _alive_predicate() -> Callable[[], bool]:
    """True while this browser session exists; the runner's thread ends when it says False."""
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if ctx is None or not Runtime.exists():
            return lambda: True
        sid, rt = ctx.session_id, Runtime.instance()
        return lambda: rt.is_active_session(sid)
    except Exception:  # AppTest and bare runs have no runtime: the thread is a daemon anyway
        return lambda: True


def get_runner() -> SessionRunner:
    if "runner" not in st.session_state:
        st.session_state["runner"] = SessionRunner(alive=_alive_predicate())
    return st.session_state["runner"]


def ensure_run(runner: SessionRunner, run_id: str, spec: RunSpec) -> str:
    """Keep run_id in step with the widgets: rebuild on a change, lr and budget change live."""
    try:
        runner.ensure(run_id, spec)
    except (ConfigError, DataError, ValueError) as e:
        st.error(str(e))
        return ""
    return run_id


# ---------------------------------------------------------------------------------------------
# Links: widget values <-> st.query_params
# ---------------------------------------------------------------------------------------------


def _note(msg: str) -> None:
    st.session_state.setdefault(_URL_NOTES, [])
    if msg not in st.session_state[_URL_NOTES]:
        st.session_state[_URL_NOTES].append(msg)


def url_default(key: str, default: Any, check: Callable[[str], Any]) -> Any:
    """The widget's starting value: from the link when it has a valid one, else the default.

    Registers the key so `sync_url` writes it back. `check` turns the link's text into a value or
    raises ValueError with a reason.
    """
    st.session_state.setdefault(_URL_KEYS, {})
    st.session_state[_URL_KEYS][key] = default
    if key not in st.session_state and key in st.query_params:
        raw = st.query_params[key]
        try:
            st.session_state[key] = check(raw)
        except (ValueError, TypeError, ConfigError, DataError) as e:
            _note(f"Ignored {key}={raw!r} from the link: {e}")
    return st.session_state.get(key, default)


def url_notes() -> None:
    """Show what the link asked for that could not be used (once per session)."""
    notes = st.session_state.get(_URL_NOTES)
    if notes:
        st.info(" ".join(notes))
        st.session_state[_URL_NOTES] = []


def sync_url() -> None:
    """Write every registered widget that differs from its default into the link."""
    keys: dict[str, Any] = st.session_state.get(_URL_KEYS, {})
    want = {}
    for k, default in keys.items():
        v = st.session_state.get(k, default)
        if v != default and v is not None:
            want[k] = _fmt(v)
    have = {k: st.query_params[k] for k in st.query_params}
    if have != want:
        st.query_params.from_dict(want)


def _fmt(v: Any) -> str:
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


def field_widget(f: dataclasses.Field, key: str, default: Any, label: str | None = None, disabled: bool = False) -> Any:
    """One widget for one config/dataset field, from its metadata (choices, min, max, log, help)."""
    m = f.metadata
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
    label = label or f.name.replace("_", " ")
    value = url_default(key, default, lambda raw: validate_value(f, raw))
    help_ = m.get("help") or None
    if m.get("choices"):
        opts = list(m["choices"])
        return st.selectbox(label, opts, index=opts.index(value) if value in opts else 0, key=key, help=help_, disabled=disabled)
    if t == "bool":
        return st.toggle(label, value=bool(value), key=key, help=help_, disabled=disabled)
    lo, hi = m.get("min"), m.get("max")
    if t == "float" and m.get("log") and lo and hi:
        opts = _log_grid(lo, hi, float(value))
        return st.select_slider(label, opts, value=float(value), key=key, help=help_, format_func=lambda v: f"{v:g}", disabled=disabled)
    if t == "float" and lo is not None and hi is not None:
        step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9)) - 2)
        return st.slider(label, float(lo), float(hi), float(value), step=float(step), key=key, help=help_, disabled=disabled)
    if t == "int":
        return int(st.number_input(label, min_value=lo, max_value=hi, value=int(value), step=1, key=key, help=help_, disabled=disabled))
    if t == "float":
        return float(st.number_input(label, min_value=lo, max_value=hi, value=float(value), key=key, help=help_, disabled=disabled))
    return st.text_input(label, value=str(value), key=key, help=help_, disabled=disabled)


def config_form(cls: type[Config], prefix: str, only: list[str] | None = None, overrides: dict | None = None, skip: tuple = ()) -> Config:
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
        return cls(**{k: validate_value(next(g for g in dataclasses.fields(cls) if g.name == k), v) for k, v in values.items()})
    except ConfigError as e:
        st.error(str(e))
        return defaults


def dataset_picker(prefix: str, default: str = "moons", allow_upload: bool = True, params: bool = True) -> Dataset | None:
    """Choose a built-in dataset and its parameters, or upload a CSV. Errors are one sentence."""
    names = list(DATASETS) + (["upload CSV"] if allow_upload else [])
    key = f"{prefix}.data"
    choice = url_default(key, default, lambda raw: raw if raw in names else (_ for _ in ()).throw(ValueError("not a dataset")))
    name = st.selectbox("dataset", names, index=names.index(choice) if choice in names else 0, key=key,
                        format_func=lambda n: DATASETS[n].title if n in DATASETS else "Your points (CSV)")
    if name == "upload CSV":
        up = st.file_uploader("CSV with two numeric columns (x, y), header optional", type=["csv", "txt"], key=f"{prefix}.upload")
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
    return {"x": gx, "y": gy, "log_prob": ds.log_prob(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(size, size)}


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
    f = _field("seconds", "float", seconds, min=0.0, max=600.0, help="wall-clock training budget; 0 trains until you pause")
    s = field_widget(f, f"{prefix}.seconds", seconds, label="budget (s)")
    return float(s) if s and s > 0 else None


def seed_widget(prefix: str, default: int = 0) -> int:
    f = _field("seed", "int", default, min=0, max=2**31 - 1, help="same seed, same data, same model, same samples")
    return int(field_widget(f, f"{prefix}.seed", default))


# ---------------------------------------------------------------------------------------------
# Controls and the live fragment
# ---------------------------------------------------------------------------------------------


def controls(runner: SessionRunner, ids: list[str], prefix: str) -> None:
    """Play / pause / step / reset for these runs, plus the runner's state."""
    ids = [i for i in ids if i]
    c = st.columns([1, 1, 1, 1, 3])
    if c[0].button("▶ Train", key=f"{prefix}.play", use_container_width=True, type="primary"):
        runner.play(ids)
    if c[1].button("⏸ Pause", key=f"{prefix}.pause", use_container_width=True):
        runner.pause(ids)
    if c[2].button("⏭ Step", key=f"{prefix}.step", use_container_width=True, help="one training step"):
        runner.step(ids, 1)
    if c[3].button("↺ Reset", key=f"{prefix}.reset", use_container_width=True, help="back to step 0 (same seed)"):
        runner.reset(ids)
    c[4].caption(state_line(runner, ids))


def state_line(runner: SessionRunner, ids: list[str]) -> str:
    if runner.error:
        return f"⚠ {runner.error}"
    if runner.state == "queued":
        return "queued: other sessions are using every core; training starts when one frees up"
    parts = []
    for i in ids:
        s = runner.snapshot(i)
        if s:
            parts.append(f"{s['title']}: step {s['step']:,} · {s['steps_per_second']:.0f} steps/s · {s['status']}")
    return " | ".join(parts)


def live(runner: SessionRunner, every: float = LIVE_EVERY):
    """Decorator: run the view as a fragment that refreshes while training runs, and once more at
    the end (a full rerun, so buttons and the state line catch up)."""

    def wrap(fn):
        flag = f"_live_was_running.{fn.__qualname__}"
        running = runner.running or runner.state == "queued"

        @st.fragment(run_every=every if running else None)
        def frag():
            fn()
            now = runner.running or runner.state == "queued"
            if st.session_state.get(flag) and not now:
                st.session_state[flag] = False
                st.rerun()
            st.session_state[flag] = now

        return frag

    return wrap


def status(snap: dict | None) -> None:
    """A diverged/stopped run's sentence, where the user will see it."""
    if not snap:
        return
    if snap["status"] == "diverged":
        st.error(snap["message"])
    elif snap["status"] == "stopped" and snap.get("message"):
        st.warning(snap["message"])
    elif snap["status"] == "done" and snap.get("message"):
        st.caption(f"✔ {snap['message']}")


def metric_row(snap: dict | None, keys: list[tuple[str, str, str]]) -> None:
    """st.metric for (label, key, format) of the snapshot's latest metrics."""
    if not snap:
        return
    m = snap.get("latest_metrics", {})
    cols = st.columns(len(keys))
    for col, (label, k, fmt) in zip(cols, keys):
        v = m.get(k)
        col.metric(label, "—" if v is None else format(v, fmt))
