"""Recording a run and exporting it: frames drawn right, bounded memory, GIF / MP4 / HTML that decode."""

import io

import numpy as np
import pytest

from lab.record import Frame, Recording, frame_rgb, images, page_images, to_gif, to_html, to_mp4

BOUNDS = (-2.0, 2.0, -1.0, 1.0)


def frame(step, t, samples=None, density=True):
    g = np.linspace(-2, 2, 40), np.linspace(-1, 1, 40)
    xx, yy = np.meshgrid(*g)
    d = {"x": g[0], "y": g[1], "log_prob": -((xx - 1) ** 2 + yy**2) * 20} if density else None
    return Frame(step, t, samples, d)


def test_frame_pixels_put_the_density_and_the_samples_where_they_belong():
    rgb = frame_rgb(frame(1, 0.0, np.array([[-1.5, 0.5]])), BOUNDS, size=100)
    assert rgb.shape == (100, 100, 3) and rgb.dtype == np.uint8
    # the density's peak (x = 1, y = 0) is dark blue; the far left edge is near white
    peak, edge = rgb[50, 75].astype(int), rgb[50, 2].astype(int)
    assert peak.sum() < 300 and edge.sum() > 600 and peak[2] > peak[0]
    # the sample at (-1.5, 0.5): column 12, row 25 (rows run top-down) is red
    assert tuple(rgb[25, 12]) == (214, 39, 40)
    assert tuple(frame_rgb(frame(1, 0.0, None, density=False), BOUNDS, size=10)[5, 5]) == (255, 255, 255)


def test_a_recording_keeps_its_span_in_bounded_memory():
    r = Recording(gap=0.2, max_frames=50)
    for i in range(10_000):
        r.add(frame(i, i * 0.1))
    assert len(r) < 50
    assert r.frames[0].step == 0 and r.frames[-1].step > 9000
    assert not r.add(frame(r.frames[-1].step, 1e9))  # the same step twice is one frame


def test_gif_mp4_and_html_exports_decode():
    from PIL import Image

    frames = [frame(i * 10, i * 0.5, np.random.default_rng(i).normal(size=(50, 2))) for i in range(6)]
    ims = images(frames, BOUNDS, "flow", size=96)
    gif = Image.open(io.BytesIO(to_gif(ims)))
    assert gif.n_frames == 6 and gif.size == (96, 96)
    mp4 = to_mp4(ims)
    assert mp4[4:8] == b"ftyp" and len(mp4) > 1000
    html = to_html(frames, BOUNDS, "flow")
    assert html.count('"name":"50"') >= 1 and "Play" in html and "plotly" in html.lower()
    sheet = page_images({"a": frames, "b": frames[:3]}, BOUNDS, n=4, size=60, per_row=2)
    assert len(sheet) == 4 and sheet[0].size == (120, 60)
    with pytest.raises(ValueError, match="Nothing was recorded"):
        to_gif([])


def test_a_session_records_the_pictures_that_arrive(tmp_path):
    import time

    from lab.data import make_dataset
    from lab.live.pool import get_pool
    from lab.live.session import LiveSession
    from lab.spec import RunSpec

    s = LiveSession(get_pool())
    s.add("r", RunSpec("flow", make_dataset("moons"), None, seed=0, n_train=2000, max_steps=300), start=True)
    s.record(["r"])
    t0 = time.time()
    while (s.snapshot("r") is None or not s.snapshot("r").finished) and time.time() - t0 < 60:
        time.sleep(0.05)
    rec = s.recording("r")
    assert rec is not None and len(rec) >= 2 and rec.frames[-1].step > rec.frames[0].step
    s.record(["r"], on=False)
    assert s.recording("r") is None
    s.close()
