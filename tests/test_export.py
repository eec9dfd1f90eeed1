"""The comparison's zip: every run's files, the scoreboard, the link, and figures that work offline."""

import io
import zipfile

import numpy as np

from lab.export import RunExport, bundle, safe_name
from lab.viz import density_figure


def test_the_zip_holds_every_run_the_scoreboard_and_the_link():
    s = np.array([[0.5, -1.25], [2.0, 3.0]])
    html = density_figure(None, s, "flow", (-3, 3, -3, 3)).to_html(include_plotlyjs="directory")
    runs = [
        RunExport("flow", s, html, b"W"),
        RunExport("gan <x>", s, html, None),
        RunExport("flow", s, html, b"V"),
    ]
    raw = bundle(
        runs, "model,step\nflow,3\n", "[]", "http://127.0.0.1:8501/compare?compare.seed=3", "/*plotly*/"
    )
    z = zipfile.ZipFile(io.BytesIO(raw))
    names = set(z.namelist())
    assert {
        "runs/flow/samples.csv",
        "runs/flow/figure.html",
        "runs/flow/model.safetensors",
        "runs/gan_x/samples.csv",
        "runs/flow-2/model.safetensors",
        "scoreboard.csv",
        "scoreboard.json",
        "link.txt",
        "plotly.min.js",
    } <= names
    assert (
        "runs/gan_x/model.safetensors" not in names
    )  # weights that could not be taken are left out, not empty
    assert np.allclose(
        np.loadtxt(io.StringIO(z.read("runs/flow/samples.csv").decode()), delimiter=",", skiprows=1), s
    )
    assert 'src="../../plotly.min.js"' in z.read("runs/flow/figure.html").decode()
    assert z.read("link.txt").decode().strip() == "http://127.0.0.1:8501/compare?compare.seed=3"
    assert z.read("runs/flow-2/model.safetensors") == b"V"
    assert safe_name("../../etc/passwd") == "etc_passwd"
