"""Responsiveness in a real browser (Playwright + Debian's Chromium): first paint of every page,
figure updates per second with six families training on the Compare page, how fast a widget
answers while they train, and how often a family's own page moves its main panel.

    python bench/browser_responsiveness.py [--families flow,ar,vae,gan,ddpm,gmm] [--seconds 10] [--no-family-pages]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests.e2e.conftest import CHROMIUM_ARGS as ARGS  # noqa: E402  (Chromium as the e2e tests start it)

# a family's own page and the start of its main panel's title (which carries the step)
FAMILY_PANELS = [
    ("flows", "Learned density, step"),
    ("autoregressive", "Learned density, step"),
    ("vae", "Variational autoencoder, step"),
    ("gan", "Samples, step"),
    ("diffusion", "Samples, step"),
]
PANEL_COUNTER = """(prefix) => { window.__n = 0; let last = null; setInterval(() => {
  const t = [...document.querySelectorAll('.js-plotly-plot .gtitle')].map(e => e.textContent).find(s => s.startsWith(prefix));
  if (t && t !== last) { last = t; window.__n++; } }, 20); }"""
PAGES = [
    "compare",
    "datasets",
    "flows",
    "autoregressive",
    "vae",
    "gan",
    "diffusion",
    "classifiers",
    "inverse",
    "scoreboard",
]

COUNTER = """
() => {
  window.__updates = {};  // panel -> [times its title changed, ms since the window began]
  const seen = {}, t0 = performance.now();
  setInterval(() => {
    document.querySelectorAll('.js-plotly-plot .gtitle').forEach((t) => {
      const s = t.textContent || '';
      const name = s.split(' · step ')[0];  // a panel is known by its family, not its place in the DOM
      if (!s.includes(' · step ')) return;
      if (seen[name] !== s) { seen[name] = s; (window.__updates[name] = window.__updates[name] || []).push(performance.now() - t0); }
    });
  }, 20);
}
"""

# each panel's run status, read from the progress bar under it ("running", "done", ...)
STATUS = """
() => Object.fromEntries([...document.querySelectorAll('.js-plotly-plot')].map((g) => {
  const t = g.querySelector('.gtitle'), col = g.closest('[data-testid="stColumn"]');
  const bar = col && col.querySelector('[data-testid="stProgress"]');
  return [(t && t.textContent || '').split(' · step ')[0], bar ? bar.textContent.trim() : ''];
}))
"""


def serve() -> tuple[subprocess.Popen, str]:
    """The app in its own process group, started as the e2e tests start it."""
    from tests.e2e.conftest import start_server

    return start_server()


def main() -> None:
    from playwright.sync_api import sync_playwright

    p = argparse.ArgumentParser()
    p.add_argument("--families", default="flow,ar,vae,gan,ddpm,gmm")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--no-family-pages", action="store_true", help="skip the family pages' update rates")
    a = p.parse_args()
    proc, url = serve()
    rows = []
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            # 1. first paint: navigation start -> the page's title is on screen (fresh session each)
            for name in PAGES + ["compare"]:
                ctx = b.new_context(viewport={"width": 1400, "height": 1000})
                pg = ctx.new_page()
                t0 = time.perf_counter()
                pg.goto(f"{url}/{name}")
                pg.locator("h1").first.wait_for(timeout=60_000)
                rows.append((f"first paint, /{name}", f"{time.perf_counter() - t0:.2f} s", "< 3 s"))
                ctx.close()
            time.sleep(5)  # let the closed sessions' threads notice they are gone
            # 2. six families training: panel updates per second and a widget's answer time
            ctx = b.new_context(viewport={"width": 1400, "height": 1000})
            pg = ctx.new_page()
            fams = a.families.split(",")
            pg.goto(f"{url}/?compare.families={a.families}&compare.seconds=0")
            pg.get_by_role("heading", name="Compare families").wait_for(timeout=60_000)
            t0 = time.time()
            while time.time() - t0 < 180:
                titles = pg.eval_on_selector_all(
                    ".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)"
                )
                if sum(bool(re.search(r" · step ", t or "")) for t in titles) == len(fams):
                    break
                time.sleep(0.5)
            pg.get_by_role("button", name=re.compile("Train")).click()
            time.sleep(3)
            pg.evaluate(COUNTER)
            time.sleep(a.seconds)
            ups, status = pg.evaluate("() => window.__updates"), pg.evaluate(STATUS)
            # the first sighting of a title is not an update. A run that finishes inside the window (EM's GMM
            # converges in ~50 steps) stops moving, rightly: its rate is taken over the time it trained.
            # A panel that stopped while its run still says "running" counts over the whole window.
            rate, notes = {}, {}
            for k, times in ups.items():
                span = a.seconds
                if status.get(k) not in ("running", "") and times[-1] < 1000 * (a.seconds - 1):
                    span = times[-1] / 1000
                    notes[k] = f" (run {status[k]} after {span:.1f} s)"
                rate[k] = (len(times) - 1) / span if span > 0 else 0.0
            # what a user sees: a panel that never moved (or never appeared) is an update rate of 0, not a gap
            for k in fams:
                rate.setdefault(k, 0.0)
            every = list(rate.values())
            rows.append(
                (
                    f"panel updates per second ({len(fams)} families, while each trains; a frozen panel counts 0)",
                    f"mean {sum(every) / len(every):.2f}, min {min(every):.2f}",
                    ">= 4",
                )
            )
            rows.append(
                (
                    "per panel",
                    ", ".join(f"{k} {v:.1f}{notes.get(k, '')}" for k, v in sorted(rate.items())),
                    "",
                )
            )
            # a click as a person makes it: the mouse goes down at the button's place (Playwright's own click()
            # first waits until the element has held still for two animation frames, up to ~1 s on a busy page)
            box = pg.get_by_role("button", name=re.compile("Pause")).bounding_box()
            t0 = time.perf_counter()
            pg.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            pg.get_by_text(re.compile(r"step [\d,]+ · \d+ steps/s · paused")).first.wait_for(timeout=30_000)
            rows.append(
                (
                    "widget answer while training (mouse click on Pause -> 'paused' shown)",
                    f"{time.perf_counter() - t0:.2f} s",
                    "< 0.5 s",
                )
            )
            steps = pg.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")
            rows.append(
                ("panels after the bench", "; ".join(t for t in steps if " · step " in (t or "")), "")
            )
            ctx.close()
            # 3. one family on its own page (more pictures per panel: 6-10 figures, one run)
            for name, prefix in [] if a.no_family_pages else FAMILY_PANELS:
                ctx = b.new_context(viewport={"width": 1400, "height": 1000})
                pg = ctx.new_page()
                pg.goto(f"{url}/{name}?{name}.seconds=0")
                pg.get_by_role("button", name=re.compile("Train")).wait_for(timeout=60_000)
                pg.wait_for_function(
                    "(p) => [...document.querySelectorAll('.js-plotly-plot .gtitle')].some(e => e.textContent.startsWith(p))",
                    arg=prefix,
                    timeout=120_000,
                )
                pg.get_by_role("button", name=re.compile("Train")).click()
                time.sleep(3)
                pg.evaluate(PANEL_COUNTER, prefix)
                time.sleep(a.seconds / 2)
                rate = (pg.evaluate("() => window.__n") - 1) / (a.seconds / 2)
                rows.append((f"main panel updates per second, /{name} (one run)", f"{rate:.1f}", ""))
                ctx.close()
            b.close()
    finally:
        from tests.e2e.conftest import kill_group

        kill_group(proc)  # the server and its trainer workers
    print(f"# browser responsiveness, {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}\n")
    print("| measure | value | target |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
