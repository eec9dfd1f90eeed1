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
        "[...document.querySelectorAll('.js-plotly-plot .gtitle')].some(t => t.textContent.startsWith('GMM after'))", timeout=60_000
    )
    before = gmm_title(page)
    assert before == "GMM after 0 EM steps"
    shot(page, "datasets-before")
    page.get_by_role("button", name=re.compile("Train")).click()
    page.wait_for_function(
        "[...document.querySelectorAll('.js-plotly-plot .gtitle')].some(t => /GMM after [1-9]/.test(t.textContent))", timeout=60_000
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
