"""Shared figures: the fast (unvalidated) live panel must be exactly what plotly's validation would build."""

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from lab.viz.common import density_figure


def test_density_figure_survives_plotly_validation_unchanged():
    rng = np.random.default_rng(0)
    lp = rng.normal(size=(30, 30))
    lp[0, 0], lp[1, 1] = -np.inf, np.nan  # a model's grid can hold both
    dens = {"x": np.linspace(-2, 3, 30), "y": np.linspace(-1.5, 2, 30), "log_prob": lp}
    fig = density_figure(dens, rng.normal(size=(500, 2)), "flow · step 12", (-2, 3, -1.5, 2), data=rng.normal(size=(50, 2)))
    checked = go.Figure(fig.to_dict())  # raises on any property name or value plotly does not know
    assert json.loads(pio.to_json(fig, validate=False)) == json.loads(pio.to_json(checked, validate=False))
    assert [t.type for t in fig.data] == ["heatmap", "scattergl", "scattergl"]
    z = np.asarray(fig.data[0].z)
    assert np.isfinite(z).all() and z.max() == 1.0 and z.min() >= np.exp(-12.0) * 0.999
    # zoom survives a live update: the revision follows the window, not the title's step count
    later = density_figure(dens, None, "flow · step 13", (-2, 3, -1.5, 2))
    assert later.layout.uirevision == fig.layout.uirevision
    assert density_figure(None, None, "x", (0, 1, 0, 1)).layout.uirevision != fig.layout.uirevision
