"""Pure functions from snapshots/arrays to plotly figures. Never trains, never imports streamlit.

Shared pieces live in `lab.viz.common`; each family's own pictures in `lab.viz.<family>`.
"""

from lab.viz.common import (  # noqa: F401
    PALETTE,
    curves,
    density_figure,
    empty_figure,
    position_colors,
    samples_figure,
)
