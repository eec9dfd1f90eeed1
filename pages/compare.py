"""Compare: every family trained live on the same data, same seed, same budget, side by side."""

import streamlit as st

st.title("Compare families")  # before the heavy imports: the home page paints while torch loads

import pandas as pd  # noqa: E402

from lab.base import REGISTRY, ConfigError, get_model_class, make_config, model_from_bytes  # noqa: E402
from lab.live.session import JobError  # noqa: E402
from lab.presets import PRESETS  # noqa: E402
from lab.snapshot import SUMMARY_COLUMNS, snapshot_summary  # noqa: E402
from lab.spec import RunSpec  # noqa: E402
from lab.viz import curves, density_figure  # noqa: E402
from lab.viz.common import density_spec, spec_json  # noqa: E402
from pages import ui  # noqa: E402

ui.url_notes()
runner = ui.get_runner()

with st.sidebar:
    names = ["none"] + list(PRESETS)
    pkey = "compare.preset"
    st.session_state.setdefault(pkey, ui.url_default(pkey, "none", lambda raw: ui._known(raw, names)))
    choice = st.selectbox(
        "lecture preset",
        names,
        key=pkey,
        format_func=lambda k: "— free comparison —" if k == "none" else PRESETS[k].title,
    )
    preset = PRESETS.get(choice)
    if preset is None:
        ds = ui.dataset_picker("compare")
        picked = ui.multiselect_keys("families", list(REGISTRY), "compare.families")
        runs = [(k, k, {}) for k in picked]
    else:
        ds = ui._cached_dataset(preset.data, tuple(sorted(preset.data_params.items())))
        runs = [(r.label, r.model, r.config) for r in preset.runs]
    seed = ui.seed_widget("compare", preset.seed if preset else 0)
    ui.linked("compare.budget", "per run", choices=["per run", "wall"])
    budget = st.radio(
        "budget",
        ["per run", "wall"],
        key="compare.budget",
        horizontal=True,
        format_func=lambda b: {"per run": "training s per run", "wall": "finish in … s"}[b],
        help="per run: each run trains this many seconds of its own (nine runs share the cores, so "
        "the comparison takes longer); finish in: the whole comparison ends after this many "
        "seconds of wall time, each run with its fair share of the machine",
    )
    seconds = ui.budget_widget("compare", preset.seconds if preset else 60.0)
    per_run, wall = (seconds, None) if budget == "per run" else (None, seconds)

if preset is not None:
    st.info(f"**{preset.title}.** {preset.lesson}")
if ds is None or not runs:
    st.info("Choose a dataset (or draw or upload one) and at least one family.")
    ui.sync_url()
    st.stop()

ids, labels = [], {}
for i, (label, key, cfg) in enumerate(runs):
    try:
        config = make_config(get_model_class(key).Config, cfg)
    except ConfigError as e:
        st.error(f"{label}: {e}")
        continue
    spec = RunSpec(key, ds, config, seed=seed, max_seconds=per_run, max_wall_seconds=wall, views=False)
    rid = ui.ensure_run(runner, f"compare/{i}:{label}", spec, many=len(runs) > 2)
    if rid:
        ids.append(rid)
        labels[rid] = label
loaded = st.session_state.setdefault("compare.loaded", {})  # run id -> label of uploaded models
for rid, label in loaded.items():
    if runner.has(rid):
        ids.append(rid)
        labels[rid] = label
for stale in [r for r in runner.ids if r.startswith("compare/") and r not in ids]:
    runner.remove(stale)

ui.controls(runner, ids, "compare")
truth = ui.truth_grid(ds)
bounds = ds.bounds()
per_row = 2 if ui.lecture_mode() else 3
LIVE_POINTS = 500  # drawn on a canvas over the plot (see pages/live_chart.js)
height = ui.fig_height(300)
SCOREBOARD_EVERY = (
    6.0  # its metrics change every few seconds; a table redrawn often costs the browser more than the panels
)


def panel_text(label: str):
    """A run's panel as its feed writes it (in the feed's thread: no streamlit here)."""
    return lambda snap: spec_json(
        density_spec(
            snap.density,
            snap.samples,
            f"{label} · step {snap.step:,}",
            bounds,
            height=height,
            max_points=LIVE_POINTS,
            upsample=1,  # the browser smooths the stretched grid: 1.4 KB a picture instead of 18
        ),
        extra={"v": snap.time},
        binary=True,  # the samples as typed arrays (pages/live_chart.js reads them)
    )


# with a feed the panels fetch their pictures themselves: the fragment only moves the progress bars
feeds = {rid: runner.watch(rid, panel_text(labels[rid])) for rid in ids}


@ui.live(runner, every=ui.COMPARE_EVERY if None in feeds.values() else 2.0)
def panels():
    if wall:
        snaps = [s for i in ids if (s := runner.snapshot(i)) is not None]
        left = max([0.0] + [wall - s.wall_seconds for s in snaps if not s.finished])
        st.caption(
            f"finishes on time: {left:.0f} s of training left"
            if runner.running or left < wall
            else f"the comparison will end {wall:g} s after Train (pausing stops its clock)"
        )
    cells = [("truth", None)] + [(labels[i], i) for i in ids]
    for row in range(0, len(cells), per_row):
        cols = st.columns(per_row)
        for col, (label, rid) in zip(cols, cells[row : row + per_row]):
            with col:
                if rid is None:
                    title = "true density" if truth is not None else f"data ({len(ds.points):,} points)"
                    ui.chart(
                        "compare.truth",
                        (id(ds), seed, height),
                        lambda: density_spec(
                            truth, None, title, bounds, data=ds.sample(1000, seed), height=height
                        ),
                    )
                    continue
                snap = runner.snapshot(rid)
                if snap is None or snap.samples is None:
                    st.caption(f"{label}: building…")
                    if snap:
                        ui.status(snap)
                    continue
                ui.chart(
                    f"compare.fig.{rid}",
                    (snap.time, height),
                    lambda: panel_text(label)(snap),
                    feed=feeds.get(rid),
                    live=runner.moving(rid),  # after Pause it fetches until the paused picture is in
                )
                st.progress(min(1.0, snap.progress), text=snap.status)
                ui.status(snap)


@ui.live(runner, every=SCOREBOARD_EVERY, with_state=False)
def scoreboard():
    snaps = [runner.snapshot(i) for i in ids]
    st.subheader("Scoreboard")
    if not any(s is not None and (s.step > 0 or s.latest_metrics) for s in snaps):
        # nothing measured yet; the table's code (1.2 MB of the browser's) would compete with a newcomer's
        # first figures for nothing
        st.caption("It fills in as the runs train: press Train (or Step).")
        return
    rows = [snapshot_summary(labels[i], s) for i, s in zip(ids, snaps)]
    st.dataframe(
        pd.DataFrame(rows, columns=SUMMARY_COLUMNS),
        hide_index=True,
        key="compare.scoreboard",
        column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0)},
    )
    st.caption(
        "Measured live on 500 fresh true points every few seconds; energy distance is next to its noise floor "
        "(two true samples of the same size). Click a column header to sort."
    )


@ui.live(runner, every=SCOREBOARD_EVERY, with_state=False)
def watched():
    """The number a preset's lesson points at, over training, for every run (a metric or a loss)."""
    snaps = {labels[i]: s for i in ids if (s := runner.snapshot(i)) is not None}
    series = {k: (s.metrics.get(preset.watch) or s.losses.get(preset.watch)) for k, s in snaps.items()}
    series = {k: v for k, v in series.items() if v is not None and len(v[0])}
    st.subheader(f"Watch: {preset.watch.replace('_', ' ')}")
    if not series:
        st.caption("It appears here once the runs have trained a little (metrics come every few seconds).")
        return
    ui.chart(
        "compare.watch",
        tuple(s.time for s in snaps.values()),
        lambda: curves(
            series, f"{preset.watch.replace('_', ' ')} over training steps", height=ui.fig_height(260)
        ),
    )


panels()
if preset is not None and preset.watch:
    watched()
scoreboard()


def scenario_link() -> str:
    """This page's address with its settings (the link a lecturer shares), read while the page runs."""
    from urllib.parse import urlencode

    base = str(st.context.url or "").split("?")[0]
    return base + ("?" + urlencode(st.query_params.to_dict()) if len(st.query_params) else "")


def everything(table, link: str) -> bytes:
    """The whole comparison as one zip (built when the button is pressed; weights are taken by each run's worker)."""
    import os

    import plotly

    from lab.export import RunExport, bundle

    runs = []
    for rid in ids:
        snap = runner.snapshot(rid)
        if snap is None or snap.samples is None:
            continue
        try:
            weights = runner.weights(rid)
        except JobError:
            weights = None
        html = density_figure(snap.density, snap.samples, labels[rid], bounds).to_html(
            include_plotlyjs="directory"
        )
        runs.append(RunExport(labels[rid], snap.samples, html, weights))
    with open(
        os.path.join(os.path.dirname(plotly.__file__), "package_data", "plotly.min.js"), encoding="utf-8"
    ) as f:
        js = f.read()
    return bundle(runs, table.to_csv(index=False), table.to_json(orient="records", indent=2), link, js)


with st.expander("Export and import", expanded=False):
    rows = [snapshot_summary(labels[i], runner.snapshot(i)) for i in ids]
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    c = st.columns(2)
    c[0].download_button(
        "scoreboard (CSV)",
        table.to_csv(index=False),
        "scoreboard.csv",
        "text/csv",
        key="compare.dl.csv",
        on_click="ignore",
    )
    c[1].download_button(
        "scoreboard (JSON)",
        table.to_json(orient="records", indent=2),
        "scoreboard.json",
        "application/json",
        key="compare.dl.json",
        on_click="ignore",
    )
    st.download_button(
        "download all (zip: samples, figures, weights, scoreboard, link)",
        data=lambda link=scenario_link(): everything(table, link),
        file_name="comparison.zip",
        mime="application/zip",
        key="compare.dl.all",
        icon=":material/download:",
        on_click="ignore",
    )
    for rid in ids:
        snap = runner.snapshot(rid)
        if not snap or snap.samples is None:
            continue
        name = labels[rid].split(" ")[0].replace("/", "-")
        st.markdown(f"**{labels[rid]}**")
        c = st.columns(3)
        with c[0]:
            ui.samples_download(snap.samples, name, key=f"compare.dl.s.{rid}")
        with c[1]:
            ui.figure_download(
                lambda snap=snap, label=labels[rid]: density_figure(
                    snap.density, snap.samples, label, bounds
                ),
                name,
                key=f"compare.dl.f.{rid}",
            )
        with c[2]:
            ui.weights_download(runner, rid, name, key=f"compare.dl.w.{rid}")
    ui.recorder(runner, ids, labels, bounds, "compare")
    up = st.file_uploader(
        "Restore a model from weights (.safetensors; weights only, nothing is unpickled)",
        type=["safetensors"],
        key="compare.upload_weights",
    )
    rid = f"compare/loaded:{up.name}" if up is not None else ""
    if up is not None and rid not in loaded:
        try:
            raw = up.getvalue()
            model = model_from_bytes(
                raw
            )  # checked here, so a bad file is a sentence before any worker sees it
            runner.add(
                rid,
                RunSpec(
                    model.key,
                    ds,
                    model.config,
                    seed=seed,
                    max_seconds=per_run,
                    max_wall_seconds=wall,
                    views=False,
                ),
                weights=raw,
                many=len(ids) > 1,
            )
            loaded[rid] = f"loaded: {up.name}"
            st.success(f"Restored a {model.title} from {up.name}; it joins the panels as '{loaded[rid]}'.")
            st.rerun()
        except (ConfigError, ValueError) as e:
            st.error(str(e))

ui.sync_url()
