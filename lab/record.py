"""A run recorded while it trains, as an animation: GIF (Pillow), MP4 (imageio's ffmpeg) or a self-contained
HTML player (plotly frames with a play button and a step slider).

Recording happens where the pictures arrive (the page process keeps the snapshots the workers send anyway),
so it costs training nothing. Frames are drawn with numpy and Pillow, never by a browser.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from lab.viz.common import blues

SAMPLE_RGB = (214, 39, 40)  # the samples' red, as in the live panels


@dataclass(frozen=True)
class Frame:
    """One recorded picture of a run."""

    step: int
    time: float  # wall clock when it was drawn
    samples: np.ndarray | None  # [n, 2] data coordinates
    density: dict | None  # {"x", "y", "log_prob"} or None


class Recording:
    """Frames at least `gap` seconds apart, at most `max_frames`: when full, every other frame goes and the gap
    doubles, so an hour-long recording still spans the hour in bounded memory."""

    def __init__(self, gap: float = 0.2, max_frames: int = 600):
        self.gap, self.max_frames = gap, max_frames
        self.frames: list[Frame] = []

    def add(self, frame: Frame) -> bool:
        if self.frames and (
            frame.time - self.frames[-1].time < self.gap or frame.step == self.frames[-1].step
        ):
            return False
        self.frames.append(frame)
        if len(self.frames) >= self.max_frames:
            self.frames = self.frames[::2]
            self.gap *= 2
        return True

    def __len__(self) -> int:
        return len(self.frames)


def frame_rgb(frame: Frame, bounds, size: int = 320, floor: float = 8.0) -> np.ndarray:
    """The frame as an image [size, size, 3] uint8: the density in Blues (log p clipped `floor` nats below its
    top, as the live panels show it) with the samples as red dots, over `bounds` = (x0, x1, y0, y1)."""
    x0, x1, y0, y1 = bounds
    img = np.full((size, size, 3), 255.0)
    d = frame.density
    if d is not None:
        lp = np.nan_to_num(np.asarray(d["log_prob"], dtype=float), nan=-np.inf)
        top = lp[np.isfinite(lp)].max() if np.isfinite(lp).any() else 0.0
        p = np.exp(np.clip(lp, top - floor, top) - top)
        # the grid covers the data's bounds: nearest cell per pixel (rows run top-down, y bottom-up)
        gx, gy = np.asarray(d["x"]), np.asarray(d["y"])
        px = np.clip(np.searchsorted(gx, np.linspace(x0, x1, size)), 0, len(gx) - 1)
        py = np.clip(np.searchsorted(gy, np.linspace(y1, y0, size)), 0, len(gy) - 1)
        img = blues(p)[py][:, px]
    if frame.samples is not None and len(frame.samples):
        s = np.asarray(frame.samples, dtype=float)
        s = s[np.isfinite(s).all(1)]
        c = np.round((s[:, 0] - x0) / (x1 - x0) * (size - 1)).astype(int)
        r = np.round((y1 - s[:, 1]) / (y1 - y0) * (size - 1)).astype(int)
        for dr in (0, 1):
            for dc in (0, 1):
                ok = (r + dr >= 0) & (r + dr < size) & (c + dc >= 0) & (c + dc < size)
                img[r[ok] + dr, c[ok] + dc] = SAMPLE_RGB
    return np.round(img).astype(np.uint8)


def _labelled(rgb: np.ndarray, text: str):
    from PIL import Image, ImageDraw

    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    draw.rectangle((0, 0, im.width, 14), fill=(255, 255, 255))
    draw.text((4, 2), text, fill=(40, 40, 40))
    return im


def images(frames: list[Frame], bounds, title: str, size: int = 320) -> list:
    """Pillow images of a run's frames, each titled with the step."""
    return [_labelled(frame_rgb(f, bounds, size), f"{title} · step {f.step:,}") for f in frames]


def page_images(
    runs: dict[str, list[Frame]], bounds, n: int = 120, size: int = 240, per_row: int = 3
) -> list:
    """The whole page as one animation: at n times spanning the recordings, every run's latest frame so far,
    tiled `per_row` panels a row."""
    from PIL import Image

    runs = {k: v for k, v in runs.items() if v}
    if not runs:
        return []
    t0 = min(v[0].time for v in runs.values())
    t1 = max(v[-1].time for v in runs.values())
    times = np.linspace(t0, t1, max(2, n)) if t1 > t0 else np.array([t0])
    rows = math.ceil(len(runs) / per_row)
    out = []
    for t in times:
        sheet = Image.new("RGB", (per_row * size, rows * size), (255, 255, 255))
        for i, (name, frames) in enumerate(runs.items()):
            k = max(0, int(np.searchsorted([f.time for f in frames], t, side="right")) - 1)
            f = frames[k]
            sheet.paste(
                _labelled(frame_rgb(f, bounds, size), f"{name} · step {f.step:,}"),
                ((i % per_row) * size, (i // per_row) * size),
            )
        out.append(sheet)
    return out


def to_gif(ims: list, fps: float = 8.0) -> bytes:
    if not ims:
        raise ValueError("Nothing was recorded yet: switch recording on and train.")
    buf = io.BytesIO()
    ims[0].save(buf, format="GIF", save_all=True, append_images=ims[1:], duration=int(1000 / fps), loop=0)
    return buf.getvalue()


def to_mp4(ims: list, fps: float = 8.0) -> bytes:
    """H.264 MP4 through imageio's ffmpeg (a binary that ships inside the imageio-ffmpeg package)."""
    import imageio.v2 as imageio

    if not ims:
        raise ValueError("Nothing was recorded yet: switch recording on and train.")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "run.mp4")
        # even sizes for yuv420p; macro_block_size=1 keeps our sizes as they are
        w = imageio.get_writer(
            path,
            fps=fps,
            codec="libx264",
            quality=7,
            macro_block_size=1,
            ffmpeg_log_level="error",
            pixelformat="yuv420p",
        )
        try:
            for im in ims:
                a = np.asarray(im)
                w.append_data(a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2])
        finally:
            w.close()
        with open(path, "rb") as f:
            return f.read()


def to_html(frames: list[Frame], bounds, title: str, floor: float = 8.0) -> str:
    """A self-contained HTML animation (plotly.js inside): the density and samples of each frame, a play
    button and a slider over the steps."""
    import plotly.graph_objects as go

    if not frames:
        raise ValueError("Nothing was recorded yet: switch recording on and train.")
    x0, x1, y0, y1 = bounds

    def traces(f: Frame) -> list:
        out = []
        if f.density is not None:
            lp = np.asarray(f.density["log_prob"], dtype=float)
            top = np.nanmax(np.where(np.isfinite(lp), lp, -np.inf)) if np.isfinite(lp).any() else 0.0
            z = np.exp(np.clip(np.nan_to_num(lp, nan=-np.inf), top - floor, top) - top)
            out.append(
                go.Heatmap(
                    x=f.density["x"],
                    y=f.density["y"],
                    z=z,
                    colorscale="Blues",
                    showscale=False,
                    zsmooth="best",
                )
            )
        s = np.zeros((0, 2)) if f.samples is None else np.asarray(f.samples)
        out.append(go.Scattergl(x=s[:, 0], y=s[:, 1], mode="markers", marker=dict(size=3, color="#d62728")))
        return out

    names = [f"{f.step}" for f in frames]
    fig = go.Figure(
        data=traces(frames[0]),
        frames=[
            go.Frame(data=traces(f), name=n, layout=go.Layout(title=f"{title} · step {f.step:,}"))
            for f, n in zip(frames, names)
        ],
    )
    fig.update_layout(
        title=f"{title} · step {frames[0].step:,}",
        width=640,
        height=680,
        showlegend=False,
        xaxis=dict(range=[x0, x1]),
        yaxis=dict(range=[y0, y1], scaleanchor="x"),
        updatemenus=[
            dict(
                type="buttons",
                x=0,
                y=-0.06,
                xanchor="left",
                buttons=[
                    dict(
                        label="Play",
                        method="animate",
                        args=[None, {"frame": {"duration": 120, "redraw": True}, "fromcurrent": True}],
                    ),
                    dict(
                        label="Pause",
                        method="animate",
                        args=[[None], {"frame": {"duration": 0}, "mode": "immediate"}],
                    ),
                ],
            )
        ],
        sliders=[
            dict(
                x=0.15,
                len=0.85,
                y=-0.02,
                currentvalue={"prefix": "step "},
                steps=[
                    dict(
                        label=n,
                        method="animate",
                        args=[[n], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}],
                    )
                    for n in names
                ],
            )
        ],
    )
    return fig.to_html(include_plotlyjs=True, full_html=True)
