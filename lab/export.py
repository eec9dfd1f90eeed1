"""One zip of a comparison: every run's samples, figure and weights, the scoreboard, and the scenario's link."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RunExport:
    """What one run contributes to the zip (weights None when they could not be taken)."""

    name: str  # a file-name-safe label
    samples: np.ndarray  # [n, 2] in data coordinates
    figure_html: str  # the panel as HTML that loads plotly.min.js from beside it
    weights: bytes | None


def safe_name(label: str) -> str:
    """A label as a file name: letters, digits, '.', '_' and '-' only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._-") or "run"


def samples_csv(samples: np.ndarray) -> str:
    buf = io.StringIO()
    np.savetxt(buf, np.asarray(samples), delimiter=",", header="x,y", comments="", fmt="%.8g")
    return buf.getvalue()


def bundle(
    runs: list[RunExport], scoreboard_csv: str, scoreboard_json: str, link: str, plotly_js: str
) -> bytes:
    """The zip: runs/<name>/{samples.csv, figure.html, model.safetensors}, scoreboard.csv/.json, link.txt and
    one plotly.min.js the figures share (they work offline, in a lecture hall)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        seen: set[str] = set()
        for r in runs:
            name, k = safe_name(r.name), 2
            while name in seen:
                name, k = f"{safe_name(r.name)}-{k}", k + 1
            seen.add(name)
            z.writestr(f"runs/{name}/samples.csv", samples_csv(r.samples))
            z.writestr(
                f"runs/{name}/figure.html",
                r.figure_html.replace('src="plotly.min.js"', 'src="../../plotly.min.js"'),
            )
            if r.weights is not None:
                z.writestr(f"runs/{name}/model.safetensors", r.weights)
        z.writestr("scoreboard.csv", scoreboard_csv)
        z.writestr("scoreboard.json", scoreboard_json)
        z.writestr("link.txt", link + "\n")
        z.writestr("plotly.min.js", plotly_js)
    return out.getvalue()
