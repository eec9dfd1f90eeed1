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
    page.wait_for_function(  # both charts drawn (they arrive in either order)
        "['Reverse trajectories', 'Samples, step'].every(s => [...document.querySelectorAll('.js-plotly-plot .gtitle')]"
        ".some(t => t.textContent.startsWith(s)))",
        timeout=90_000,
    )
    counts = page.evaluate(CANVAS_TRACES)
    samples = next(v for k, v in counts.items() if k.startswith("Samples, step"))
    paths = next(v for k, v in counts.items() if k.startswith("Reverse trajectories"))
    assert samples == 1 and paths == 0, counts
    assert_no_exception(page)


# The truth panel's points canvas: (drawn pixels in the title band above the plot, drawn pixels in all).
CANVAS_INK = """() => { const box = [...document.querySelectorAll('.lab-live-chart-box')][0];
  const c = box.querySelector('canvas'); const g = c.getContext('2d');
  const px = g.getImageData(0, 0, c.width, c.height).data, band = Math.round(30 * (window.devicePixelRatio || 1));
  let title = 0, all = 0;
  for (let i = 3; i < px.length; i += 4) if (px[i] > 0) { all++; if ((i - 3) / 4 / c.width < band) title++; }
  return [title, all, box.classList.contains('lab-preview')]; }"""


PLOTLY_OVER_PREVIEW = """window.__labOver = [];  // per chart plotly draws: was the preview there before it?
new MutationObserver((ms) => { for (const m of ms) { const el = m.target;
  if (el.classList && el.classList.contains("js-plotly-plot") && !el.__labCounted) {
    el.__labCounted = true;
    window.__labOver.push(el.parentElement.classList.contains("lab-preview"));
  } } }).observe(document, { subtree: true, attributes: true, attributeFilter: ["class"] });"""


def test_a_panel_is_drawn_before_plotly_loads_and_plotly_takes_over(app_url, page):
    """plotly.js (1.5 MB) arrives last on a newcomer's page: until it has, each density panel is drawn on its
    canvas (picture, points, title); once it has, plotly draws the chart and the canvas keeps only the points."""
    held = []
    page.add_init_script(PLOTLY_OVER_PREVIEW)
    page.route("**/plotly.min.js", lambda route: held.append(route))  # not answered until the test says so
    page.goto(app_url + "/?compare.families=gmm,kde&compare.seconds=5")
    page.wait_for_selector(".lab-preview", timeout=60_000)
    assert page.locator(".js-plotly-plot").count() == 0 and held
    time.sleep(0.5)  # the preview's density image decodes asynchronously
    title, ink, preview = page.evaluate(CANVAS_INK)
    assert preview and title > 50 and ink > 5000, (title, ink)
    for route in held:
        route.continue_()
    page.wait_for_function(
        "[...document.querySelectorAll('.js-plotly-plot .gtitle')].some(t => t.textContent === 'true density')",
        timeout=60_000,
    )
    time.sleep(0.5)
    title, ink, _ = page.evaluate(CANVAS_INK)
    assert title == 0 and ink > 0, (title, ink)  # plotly draws the title and picture; the canvas, the points
    # plotly.js is there when another page's pictures come (the router's preload does this for every newcomer):
    # the preview still goes first, since plotly's first drawing of a chart takes 50-100 ms and charts queue
    # (the Datasets page also has charts that are not density panels, drawn by plotly alone, so the test waits
    # for the page's charts, not for its first one)
    before = page.evaluate("window.__labOver.length")
    page.get_by_role("link", name="Datasets").click()
    page.wait_for_function(f"window.__labOver.slice({before}).some((x) => x)", timeout=60_000)
    assert_no_exception(page)


def test_the_router_starts_plotly_js_from_an_invisible_first_element(app_url, page):
    """Every page's first element is the live chart component with nothing to draw (sent as bytes, so the
    server does not import pandas for it before the title): it fetches plotly.js and hides its own cell."""
    with page.expect_request("**/plotly.min.js", timeout=60_000):
        page.goto(app_url + "/lecture")
    page.get_by_role("heading").first.wait_for(timeout=60_000)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stSidebar"] [data-testid="stElementContainer"]')]
             .some((c) => c.style.display === 'none' && !c.querySelector('.lab-live-chart-box'))""",
        timeout=30_000,
    )  # a hidden cell that drew no chart
    assert_no_exception(page)
