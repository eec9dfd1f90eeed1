"""The app as a person uses it: Compare page train/pause, a shared link, CSV upload, a download."""

import re
import time

from tests.e2e.test_browser import assert_no_exception, shot

PANEL_TITLES = "els => els.map(e => e.textContent)"


def panel_steps(page) -> dict[str, int]:
    """Steps shown in the Compare panels' titles ('gmm · step 12')."""
    out = {}
    for t in page.eval_on_selector_all(".js-plotly-plot .gtitle", PANEL_TITLES):
        m = re.match(r"(.+) · step ([\d,]+)", t or "")
        if m:
            out[m.group(1)] = int(m.group(2).replace(",", ""))
    return out


# For the flow panel: of its samples inside the current axis ranges, the fraction whose place on the
# points canvas (pages/live_chart.js) is painted. Plotly draws the axes; the canvas must follow them.
POINTS_ON_CANVAS = """() => {
  const g = [...document.querySelectorAll('.js-plotly-plot')].find(g => /^flow · step/.test(g.layout.title.text));
  const canvas = g.parentElement.querySelector('canvas.lab-live-points'), ctx = canvas.getContext('2d');
  const xa = g._fullLayout.xaxis, ya = g._fullLayout.yaxis, dpr = canvas.width / g._fullLayout.width;
  const p = g.__labPoints[0];
  let inside = 0, painted = 0;
  for (let i = 0; i < p.x.length; i++) {
    const px = xa._offset + xa.l2p(p.x[i]), py = ya._offset + ya.l2p(p.y[i]);
    if (px < xa._offset + 2 || px > xa._offset + xa._length - 2 || py < ya._offset + 2 || py > ya._offset + ya._length - 2) continue;
    inside++;
    if (ctx.getImageData(Math.round(px * dpr), Math.round(py * dpr), 1, 1).data[3] > 0) painted++;
  }
  return [inside, painted];
}"""


def wait_until(pred, timeout=90.0, every=0.25):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(every)
    return None


def test_compare_trains_and_pauses(app_url, page):
    fed = []  # the panels fetch their pictures from the pool's feed (lab/live/feed.py) while training
    page.on("requestfinished", lambda r: fed.append(r.url) if "/app/static/live/" in r.url else None)
    page.goto(app_url + "/?compare.families=gmm,flow&compare.seconds=0")
    page.get_by_role("heading", name="Compare families").wait_for(timeout=60_000)
    assert wait_until(lambda: len(panel_steps(page)) == 2), "panels did not appear"
    page.get_by_role("button", name=re.compile("Train")).click()
    assert wait_until(lambda: panel_steps(page).get("flow", 0) > 0), "flow did not train"

    def line_step() -> int:  # the state line under the controls, redrawn by the live view while training
        text = page.get_by_text(re.compile(r"Normalizing flow: step [\d,]+ · ")).first.text_content()
        return int(re.search(r"Normalizing flow: step ([\d,]+)", text).group(1).replace(",", ""))

    first = line_step()
    assert wait_until(lambda: line_step() > first + 20), "the state line did not move while training"
    assert len(fed) >= 5 and all(u.endswith(".json") for u in fed), fed[:3]
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_text(re.compile(r"Normalizing flow: step [\d,]+ · \d+ steps/s · paused")).wait_for(
        timeout=30_000
    )
    time.sleep(1.0)  # the last snapshot taken before the pause may still be on its way
    a = panel_steps(page)
    time.sleep(2.0)
    assert panel_steps(page) == a  # paused: the figures stop moving
    shot(page, "compare-paused")
    assert_no_exception(page)


def test_a_shared_link_restores_the_settings(app_url, page):
    from playwright.sync_api import expect

    page.goto(
        app_url + "/?compare.families=kde,gmm&compare.seed=7&compare.data=8gaussians&compare.seconds=12"
    )
    page.get_by_role("heading", name="Compare families").wait_for(timeout=60_000)
    sidebar = page.locator("section[data-testid='stSidebar']")
    expect(sidebar.get_by_role("spinbutton", name="seed")).to_have_value("7", timeout=60_000)
    shown = "els => els.map(e => e.textContent + ' ' + [...e.querySelectorAll('input')].map(i => i.value + ' ' + (i.getAttribute('aria-label') || '')).join(' '))"
    assert wait_until(
        lambda: any(
            "8 Gaussians (ring)" in t
            for t in sidebar.locator("[data-testid='stSelectbox']").evaluate_all(shown)
        ),
        30,
    )
    # the families from the link are the panels drawn, and no others
    assert wait_until(lambda: set(panel_steps(page)) == {"kde", "gmm"}, 60), panel_steps(page)
    # the settings went back into the address bar: the link is shareable as it stands
    page.wait_for_url(re.compile(r".*compare\.seed=7.*"), timeout=30_000)
    assert "compare.data=8gaussians" in page.url
    assert_no_exception(page)


def test_a_bad_value_in_a_link_is_a_note_not_an_error(app_url, page):
    page.goto(app_url + "/?compare.families=gmm&compare.seed=banana")
    page.get_by_text(re.compile("Ignored compare.seed='banana'")).wait_for(timeout=60_000)
    assert_no_exception(page)


def test_upload_a_good_and_a_bad_csv(app_url, page, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("x,y\n" + "\n".join(f"{i / 10},{(i % 7) / 3}" for i in range(200)))
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,nan\n")
    page.goto(app_url + "/datasets?datasets.data=upload%20CSV")
    page.get_by_role("heading", name="Datasets").wait_for(timeout=60_000)
    page.get_by_text("Upload a file to train on your own points.").wait_for(timeout=60_000)
    page.locator("input[type='file']").first.set_input_files(str(bad), timeout=60_000)
    page.get_by_text("Row 3 has a missing or infinite value (NaN or inf).").wait_for(timeout=30_000)
    page.locator("input[type='file']").first.set_input_files(str(good))
    page.get_by_text("200 points from good.csv").wait_for(timeout=30_000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=60_000)
    shot(page, "datasets-upload")
    assert_no_exception(page)


def test_download_samples_csv(app_url, page):
    page.goto(app_url + "/?compare.families=gmm")
    page.get_by_role("heading", name="Compare families").wait_for(timeout=60_000)
    assert wait_until(lambda: len(panel_steps(page)) == 1)
    page.reload()  # the export list is drawn on a full run, after the first snapshot exists
    page.get_by_text("Export and import").click()
    with page.expect_download(timeout=30_000) as dl:
        page.get_by_role("button", name=re.compile("samples \\(CSV\\)")).first.click()
    path = dl.value.path()
    lines = open(path).read().splitlines()
    assert lines[0] == "x,y" and len(lines) == 1001
    assert_no_exception(page)


def download(page, button_name: str) -> str:
    """Click a download button until its file comes (at most 3 tries): a deferred download clicked while the
    page reruns can be dropped by Streamlit (its source answers 404), and a person clicks again."""
    for attempt in range(3):
        try:
            with page.expect_download(timeout=25_000) as dl:
                page.get_by_role("button", name=re.compile(button_name)).first.click()
            return dl.value.path()
        except Exception:
            if attempt == 2:
                raise
            time.sleep(1.0)


def test_download_all_as_one_zip(app_url, page):
    import io
    import zipfile

    page.goto(app_url + "/?compare.families=gmm,flow&compare.seed=4")
    page.get_by_role("heading", name="Compare families").wait_for(timeout=60_000)
    assert wait_until(lambda: len(panel_steps(page)) == 2)
    page.get_by_role("button", name=re.compile("Step")).click()  # a full run after the pictures exist
    page.get_by_text("Export and import").click()
    page.get_by_role("button", name=re.compile("samples \\(CSV\\)")).first.wait_for(timeout=30_000)
    z = zipfile.ZipFile(io.BytesIO(open(download(page, "download all"), "rb").read()))
    names = set(z.namelist())
    assert {
        "runs/gmm/samples.csv",
        "runs/gmm/model.safetensors",
        "runs/flow/figure.html",
        "scoreboard.csv",
        "link.txt",
        "plotly.min.js",
    } <= names
    assert "compare.seed=4" in z.read("link.txt").decode()
    assert_no_exception(page)


def test_record_the_panels_and_download_a_gif(app_url, page):
    import io

    from PIL import Image

    page.goto(app_url + "/?compare.families=flow&compare.seconds=0")
    page.get_by_role("heading", name="Compare families").wait_for(timeout=60_000)
    assert wait_until(lambda: len(panel_steps(page)) == 1)
    page.get_by_text("Export and import").click()
    toggle = page.locator('input[aria-label="record while training"]')
    for _ in range(3):
        # a click that lands while the page reruns on its own (the run's build ending) can be undone by
        # that rerun in Streamlit: the switch flips back, as a user would see, and is clicked again
        if not toggle.is_checked():
            page.get_by_text("record while training").click()
        try:
            page.get_by_text(re.compile(r"^flow: \d+ frames")).wait_for(timeout=10_000)
            break
        except Exception:
            continue
    page.get_by_role("button", name=re.compile("Train")).click()
    assert wait_until(lambda: max(panel_steps(page).values(), default=0) > 100, 60)
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_text(re.compile(r"flow: [2-9]\d* frames|flow: \d{2,} frames")).first.wait_for(timeout=60_000)
    gif = Image.open(io.BytesIO(open(download(page, "download \\(GIF\\)"), "rb").read()))
    assert gif.format == "GIF" and gif.n_frames >= 2
    assert_no_exception(page)


def test_a_zoom_on_a_live_panel_survives_its_updates(app_url, page):
    """Live charts are redrawn in place (Plotly.react with a fixed uirevision), not remounted, so a
    box zoom made while the model trains stays while the panel keeps changing."""
    page.goto(app_url + "/?compare.families=flow&compare.seconds=0")
    page.get_by_role("heading", name="Compare families").wait_for(timeout=60_000)
    assert wait_until(lambda: "flow" in panel_steps(page)), "the flow panel did not appear"
    page.get_by_role("button", name=re.compile("Train")).click()
    assert wait_until(lambda: panel_steps(page).get("flow", 0) > 0), "flow did not train"
    x_range = "() => [...document.querySelectorAll('.js-plotly-plot')].find(g => /^flow · step/.test(g.layout.title.text))._fullLayout.xaxis.range"
    full = page.evaluate(x_range)
    box = (
        page.locator(".js-plotly-plot .nsewdrag").nth(1).bounding_box()
    )  # the flow panel's plot area (truth is first)
    x0, y0 = box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + 0.3 * box["width"], y0 + 0.3 * box["height"], steps=8)
    page.mouse.up()
    zoomed = page.evaluate(x_range)
    assert zoomed[1] - zoomed[0] < 0.5 * (full[1] - full[0]), (full, zoomed)
    step = panel_steps(page)["flow"]
    assert wait_until(lambda: panel_steps(page).get("flow", 0) > step + 20), "the panel stopped updating"
    assert page.evaluate(x_range) == zoomed  # the updates kept the zoom
    # the samples are drawn on a canvas over the plot: where the zoomed axes put them, the canvas is painted
    page.get_by_role("button", name=re.compile("Pause")).click()
    page.get_by_text(re.compile(r"Normalizing flow: step [\d,]+ · \d+ steps/s · paused")).wait_for(
        timeout=30_000
    )
    time.sleep(1.0)
    inside, painted = page.evaluate(POINTS_ON_CANVAS)
    assert inside >= 10 and painted == inside, (inside, painted)
    assert_no_exception(page)
