"""The app in a real browser: load it, train, pause, and see a figure change."""

import os
import re
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOTS = os.environ.get("LAB_SCREENSHOTS")  # a folder to keep screenshots in, for a person to look at


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def gmm_title(page) -> str:
    titles = page.eval_on_selector_all(".js-plotly-plot .gtitle", "els => els.map(e => e.textContent)")
    return next((t for t in titles if t.startswith("GMM after")), "")


def test_datasets_page_trains_the_gmm_in_the_browser(app_url, page):
    page.goto(app_url + "/datasets")
    page.get_by_role("heading", name="Datasets").wait_for(timeout=60_000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=60_000)
    page.wait_for_function(
        "[...document.querySelectorAll('.js-plotly-plot .gtitle')].some(t => t.textContent.startsWith('GMM after'))",
        timeout=60_000,
    )
    before = gmm_title(page)
    assert before == "GMM after 0 EM steps"
    shot(page, "datasets-before")
    page.get_by_role("button", name=re.compile("Train")).click()
    page.wait_for_function(
        "[...document.querySelectorAll('.js-plotly-plot .gtitle')].some(t => /GMM after [1-9]/.test(t.textContent))",
        timeout=60_000,
    )
    assert gmm_title(page) != before
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_text(re.compile(r"Gaussian mixture \(EM\): step [1-9]")).first.wait_for(timeout=30_000)
    time.sleep(1.0)
    shot(page, "datasets-after")
    assert_no_exception(page)


def assert_no_exception(page):
    """Streamlit draws an uncaught exception as an stException block: there must be none."""
    errors = page.locator('[data-testid="stException"]').all_inner_texts()
    assert not errors, errors[0][:500]


# For each chart with a title: how many traces it draws on the points canvas (pages/live_chart.js).
CANVAS_TRACES = """() => Object.fromEntries([...document.querySelectorAll('.lab-live-chart')]
  .filter((d) => d.layout && d.layout.title).map((d) => [d.layout.title.text, (d.__labPoints || []).length]))"""


def test_only_plain_points_on_top_go_on_the_canvas(app_url, page):
    """The canvas lies over the whole plot, so it may only take the last traces, and only plain markers:
    the diffusion page's samples go there; its trajectories (data points under grey paths under points
    coloured by t) stay in plotly's SVG, in plotly's order."""
    page.goto(app_url + "/diffusion")
    page.get_by_role("heading", name=re.compile("Diffusion")).wait_for(timeout=60_000)
    page.wait_for_function(
        "[...document.querySelectorAll('.js-plotly-plot .gtitle')].some(t => t.textContent.startsWith('Reverse trajectories'))",
        timeout=90_000,
    )
    counts = page.evaluate(CANVAS_TRACES)
    samples = next(v for k, v in counts.items() if k.startswith("Samples, step"))
    paths = next(v for k, v in counts.items() if k.startswith("Reverse trajectories"))
    assert samples == 1 and paths == 0, counts
    assert_no_exception(page)
