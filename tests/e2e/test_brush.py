"""Draw your own: paint a stroke on the brush canvas with the mouse, see its points, train on them."""

import re

from tests.e2e.test_app import panel_steps, wait_until
from tests.e2e.test_browser import assert_no_exception


def test_paint_a_stroke_and_train_on_it(app_url, page):
    page.goto(app_url + "/?compare.families=gmm&compare.data=draw&compare.seconds=0")
    canvas = page.locator("canvas.lab-brush-canvas")
    canvas.wait_for(timeout=60_000)
    page.get_by_text("Nothing drawn yet.").wait_for(timeout=30_000)
    box = canvas.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.2 * w, y + 0.3 * h)
    page.mouse.down()
    for k in range(1, 13):  # a diagonal stroke, then back up: a "V"
        t = k / 12
        page.mouse.move(x + (0.2 + 0.3 * t) * w, y + (0.3 + 0.4 * t) * h, steps=3)
    for k in range(1, 13):
        t = k / 12
        page.mouse.move(x + (0.5 + 0.3 * t) * w, y + (0.7 - 0.4 * t) * h, steps=3)
    page.mouse.up()
    drawn = page.get_by_text(re.compile(r"Drawn: [\d,]+ points\."))
    drawn.wait_for(timeout=30_000)
    n = int(re.search(r"([\d,]+) points", drawn.text_content()).group(1).replace(",", ""))
    assert n > 100, n
    assert wait_until(
        lambda: int(page.locator(".lab-brush").locator("..").get_attribute("data-points") or 0) > 0, 30
    )
    assert wait_until(lambda: "compare.cells=p" in page.evaluate("location.href"), 10), (
        "the drawing is not in the link"
    )
    assert wait_until(lambda: "gmm" in panel_steps(page)), "the gmm panel did not appear"
    page.get_by_role("button", name=re.compile("Train")).click()
    assert wait_until(lambda: panel_steps(page).get("gmm", 0) > 0), "gmm did not train on the drawing"
    assert_no_exception(page)
