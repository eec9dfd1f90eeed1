// A plotly chart that a live view updates in place (see `live_chart` in pages/ui.py).
//
// Mounted once per key; every update runs Plotly.react on the same div, so a zoom or pan survives.
// Large marker-only scatter traces (a panel's samples) are drawn on a canvas over the plot instead of as
// SVG: plotly spends ~35 us per SVG point on every update (500 points x 6 panels x 4 updates a second is
// most of a core on a 2-core machine); the canvas draws them in well under a millisecond. Plotly still
// draws the axes, the density picture and the title, and keeps the zoom; the canvas follows its axes.
// A panel with a feed (lab/live/feed.py) also fetches its newest picture by itself while its run trains,
// so the page need not rerun for it; meanwhile the page's reruns send only the feed's address, not the picture.

// below this, SVG points cost little and keep their hover labels; a diffusion chain's live picture (~64 points,
// what its 8 ms budget draws) goes to the canvas too: in SVG each of its updates was a whole Plotly.react
const CANVAS_MIN_POINTS = 50;
const TYPED = { f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
                u2: Uint16Array, i1: Int8Array, u1: Uint8Array };

function values(v) {  // a plain array, or plotly.py's typed-array spec {dtype, bdata}
  if (Array.isArray(v)) return v;
  if (v && typeof v.bdata === "string") {
    const T = TYPED[String(v.dtype).replace(/^[<>|=]/, "")];
    if (!T) return null;
    const bin = atob(v.bdata);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new T(bytes.buffer);
  }
  return null;
}

function axisKey(ref, letter) {  // "x2" -> "xaxis2"
  return letter + "axis" + (ref && ref.length > 1 ? ref.slice(1) : "");
}

function fixedRange(layout, key) {
  const ax = layout[key];
  return !!(ax && Array.isArray(ax.range) && ax.autorange !== true && (!ax.type || ax.type === "linear"));
}

// A trace the canvas can draw exactly as plotly would: plain round markers of one size and colour, no
// text, on axes with fixed linear ranges (a density panel's window; with automatic ranges plotly needs the
// points themselves). Plotly keeps a one-point placeholder (x = y = null, never drawn) that does not change
// between updates, so Plotly.react finds nothing to redraw but the title, and the legend still lists it.
function splitCanvasTraces(fig) {
  const layout = fig.layout || {};
  const points = [];
  // the canvas lies over the whole plot: only the last traces may go there (plotly draws traces in order),
  // and only when no shapes or annotations would end up under the points
  if ((layout.shapes && layout.shapes.length) || (layout.annotations && layout.annotations.length)) return { data: fig.data || [], points };
  const drawable = (fig.data || []).map((t) => canvasTrace(t, layout));
  let first = drawable.length;
  while (first > 0 && drawable[first - 1]) first--;
  const data = (fig.data || []).map((t, index) => {
    if (index < first) return t;
    return canvasPlaceholder(t, index, drawable[index], points);
  });
  return { data, points };
}

function canvasTrace(t, layout) {  // {x, y, xk, yk} when the canvas can draw this trace, else null
  const m = t.marker || {};
  const plain = (t.type === undefined || t.type === "scatter") && t.mode === "markers" && !t.text && !t.hovertext &&
    !t.customdata && (m.symbol === undefined || m.symbol === "circle") && (m.size === undefined || typeof m.size === "number") &&
    (m.color === undefined || typeof m.color === "string") && !(m.line && m.line.width) && !t.error_x && !t.error_y;
  if (!plain) return null;
  const x = values(t.x), y = values(t.y);
  const xk = axisKey(t.xaxis, "x"), yk = axisKey(t.yaxis, "y");
  if (!x || !y || x.length < CANVAS_MIN_POINTS || !fixedRange(layout, xk) || !fixedRange(layout, yk)) return null;
  return { x, y, xk, yk };
}

function canvasPlaceholder(t, index, c, points) {
  const m = t.marker || {};
  points.push({ index, x: c.x, y: c.y, xk: c.xk, yk: c.yk, size: m.size === undefined ? 6 : m.size, color: m.color || null,
                opacity: (t.opacity === undefined ? 1 : t.opacity) * (m.opacity === undefined ? 1 : m.opacity) });
  return { ...t, x: [null], y: [null], hoverinfo: "skip" };
}

function drawPoints(div, canvas, ranges) {
  const fl = div._fullLayout;
  if (!fl || !canvas) return;
  const dpr = window.devicePixelRatio || 1;
  const w = fl.width, h = fl.height;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    canvas.style.width = w + "px";
    canvas.style.height = h + "px";
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  for (const p of div.__labPoints || []) {
    const full = (div._fullData || [])[p.index];
    const xa = fl[p.xk], ya = fl[p.yk];
    if (!xa || !ya || (full && full.visible !== true)) continue;  // hidden from the legend, or no such axes
    // during a pan plotly moves its SVG layers; the relayouting event carries the ranges in flight
    const xr = (ranges && ranges[p.xk]) || xa.range, yr = (ranges && ranges[p.yk]) || ya.range;
    const sx = xa._length / (xr[1] - xr[0]), sy = ya._length / (yr[1] - yr[0]);
    const r = p.size / 2;
    ctx.save();
    ctx.beginPath();
    ctx.rect(xa._offset, ya._offset, xa._length, ya._length);
    ctx.clip();
    ctx.globalAlpha = p.opacity;
    ctx.fillStyle = p.color || (full && full.marker && full.marker.color) || "#1f77b4";
    for (let i = 0; i < p.x.length; i++) {
      const px = xa._offset + (p.x[i] - xr[0]) * sx, py = ya._offset + ya._length - (p.y[i] - yr[0]) * sy;
      if (!Number.isFinite(px) || !Number.isFinite(py)) continue;
      ctx.beginPath();  // one fill per point: overlapping points darken, as plotly's SVG points do
      ctx.arc(px, py, r, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.restore();
  }
}

function rangesFromEvent(div, ev) {  // {"xaxis.range[0]": a, ...} or {"xaxis.range": [a, b]} -> {xaxis: [a, b]}
  const out = {};
  for (const k of Object.keys(div._fullLayout || {})) {
    if (!/^[xy]axis\d*$/.test(k)) continue;
    const r = ev[k + ".range"] || (ev[k + ".range[0]"] !== undefined ? [ev[k + ".range[0]"], ev[k + ".range[1]"]] : null);
    if (r) out[k] = r;
  }
  return out;
}

function downloadPng(div, canvas) {  // the modebar's camera: plotly's picture with the canvas points on top
  window.Plotly.toImage(div, { format: "png" }).then((url) => {
    const img = new Image();
    img.onload = () => {
      const out = document.createElement("canvas");
      out.width = img.width;
      out.height = img.height;
      const ctx = out.getContext("2d");
      ctx.drawImage(img, 0, 0);
      ctx.drawImage(canvas, 0, 0, img.width, img.height);
      const a = document.createElement("a");
      a.href = out.toDataURL("image/png");
      a.download = "figure.png";
      a.click();
    };
    img.src = url;
  });
}

// A plain title (no markup for plotly to format) written into plotly's own title node, and into its layouts
// so that a later relayout, resize or Plotly.react starts from it. False: plotly has to draw it.
function setTitle(div, text) {
  const node = div.querySelector(".gtitle");
  const fl = div._fullLayout, layout = div.layout;
  if (!node || /[<>&$]/.test(text) || !fl || !fl.title || !layout || !layout.title || typeof layout.title !== "object") return false;
  node.textContent = text;
  node.setAttribute("data-unformatted", text);
  fl.title.text = text;
  layout.title.text = text;
  return true;
}

function drawFigure(div, canvas, fig) {
  const { data: traces, points } = splitCanvasTraces(fig);
  div.__labPoints = points;
  // one config object per chart: Plotly.react compares configs, and a new button function each time would
  // count as a change and rebuild the whole plot (losing a zoom, or a drag in progress)
  const kind = points.length ? "canvas" : "svg";
  if (!div.__labConfig || div.__labConfig.kind !== kind) {
    const config = { displaylogo: false, responsive: true };
    if (points.length) {
      config.modeBarButtonsToRemove = ["toImage"];
      config.modeBarButtonsToAdd = [{ name: "Download plot as a png", icon: null, click: () => downloadPng(div, canvas) }];
    }
    div.__labConfig = { kind, config };
  }
  const config = div.__labConfig.config;
  // most updates change only the points and the title's step count: the title's text node is set in place
  // (plotly's relayout of it, ~5 ms a panel, re-runs every layout default: nine panels updating four times a
  // second spent a sixth of a core on it), and plotly's layout is told the new text for its next drawing
  const title = fig.layout && fig.layout.title;
  const titleText = title && typeof title.text === "string" ? title.text : null;
  const rest = JSON.stringify({ traces, layout: { ...fig.layout, title: { ...title, text: null } }, frames: fig.frames || null });
  const titleOnly = titleText !== null && div.__labRest === rest && div._fullLayout;
  div.__labRest = rest;
  if (titleOnly && setTitle(div, titleText)) {
    drawPoints(div, canvas);
    return Promise.resolve();
  }
  return window.__labPlotly
    .then((Plotly) => {
      if (titleOnly) return Plotly.relayout(div, { "title.text": titleText });
      if (points.length) config.modeBarButtonsToAdd[0].icon = Plotly.Icons.camera;  // the same object each time
      return Plotly.react(div, { data: traces, layout: fig.layout, frames: fig.frames || [], config });
    })
    .then(() => {
      if (!div.__labHooked && div.on) {
        div.__labHooked = true;
        div.on("plotly_afterplot", () => drawPoints(div, canvas));
        div.on("plotly_relayouting", (ev) => drawPoints(div, canvas, rangesFromEvent(div, ev)));
      }
      drawPoints(div, canvas);
      div.parentElement.classList.add("lab-drawn");
    })
    .catch((e) => { div.textContent = "This chart could not be drawn: " + e.message; });
}

// Until plotly.js has loaded (1.5 MB: 1-2 s of a newcomer's browser, more on a busy machine), a density panel
// (fixed axes, one density image, marker traces) is drawn on its canvas in plotly's places: the picture, its
// points and its title, without ticks. Plotly then draws under it and drawPoints clears the canvas.
function previewable(fig) {
  const L = fig.layout || {};
  const xa = L.xaxis || {}, ya = L.yaxis || {};
  if (typeof L.height !== "number" || !fixedRange(L, "xaxis") || !fixedRange(L, "yaxis")) return false;
  if (Object.keys(L).some((k) => /^[xy]axis\d+$/.test(k)) || (L.shapes && L.shapes.length) ||
      (L.annotations && L.annotations.length)) return false;
  if ((L.images || []).some((im) => im.xref !== "x" || im.yref !== "y")) return false;
  return (fig.data || []).every((t) => (t.type === undefined || t.type === "scatter") && t.mode === "markers" &&
    (!t.xaxis || t.xaxis === "x") && (!t.yaxis || t.yaxis === "y") && values(t.x) && values(t.y)) && !!(xa && ya);
}

function plotArea(width, L) {  // the plot's pixel box as plotly lays it out (margins; scaleanchor with constrain "domain")
  const m = { l: 80, r: 80, t: 100, b: 80, ...(L.margin || {}) };
  const xr = L.xaxis.range, yr = L.yaxis.range;
  let x0 = m.l, y0 = m.t, w = Math.max(1, width - m.l - m.r), h = Math.max(1, L.height - m.t - m.b);
  if (L.yaxis.scaleanchor === "x") {  // equal scales: the longer side shrinks around the centre
    const s = Math.min(w / (xr[1] - xr[0]), h / (yr[1] - yr[0]));
    const pw = s * (xr[1] - xr[0]), ph = s * (yr[1] - yr[0]);
    x0 += (w - pw) / 2; y0 += (h - ph) / 2; w = pw; h = ph;
  }
  return { x0, y0, w, h, px: (x) => x0 + (x - xr[0]) * w / (xr[1] - xr[0]), py: (y) => y0 + (yr[1] - y) * h / (yr[1] - yr[0]) };
}

function preview(div, canvas, fig, done, tries = 0) {  // done(): painted, or given up
  const L = fig.layout;
  const width = div.clientWidth || (div.parentElement && div.parentElement.clientWidth) || 0;
  if (!width) {  // not laid out yet (a column still being built): the next frames may have it
    if (tries < 30) requestAnimationFrame(() => {
      if (!div._fullLayout && div.__labPreviewFig === fig) preview(div, canvas, fig, done, tries + 1);
      else done();
    });
    else done();
    return;
  }
  const token = (div.__labPreview = {});  // a newer preview, or plotly's own drawing, wins
  const a = plotArea(width, L);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(L.height * dpr);
  canvas.style.width = width + "px";
  canvas.style.height = L.height + "px";
  const paint = (images) => {
    if (div.__labPreview !== token || div._fullLayout) return done();
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, L.height);
    ctx.save();
    ctx.beginPath();
    ctx.rect(a.x0, a.y0, a.w, a.h);
    ctx.clip();
    images.forEach(([im, img]) => {
      const x = a.px(im.x), y = a.py(im.y);
      ctx.drawImage(img, x, y, a.px(im.x + im.sizex) - x, a.py(im.y - im.sizey) - y);
    });
    for (const t of fig.data || []) {
      const m = t.marker || {}, x = values(t.x), y = values(t.y);
      const r = (typeof m.size === "number" ? m.size : 6) / 2;
      ctx.globalAlpha = (t.opacity === undefined ? 1 : t.opacity) * (typeof m.opacity === "number" ? m.opacity : 1);
      ctx.fillStyle = typeof m.color === "string" ? m.color : "#636efa";
      for (let i = 0; i < x.length; i++) {
        if (x[i] === null || y[i] === null) continue;
        ctx.beginPath();
        ctx.arc(a.px(x[i]), a.py(y[i]), r, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.restore();
    const title = L.title && typeof L.title.text === "string" ? L.title.text.replace(/<[^>]*>/g, "") : "";
    if (title) {
      ctx.globalAlpha = 1;
      ctx.fillStyle = "#2a3f5f";
      ctx.font = `${(L.title.font && L.title.font.size) || 17}px "Open Sans", verdana, arial, sans-serif`;
      ctx.textBaseline = "middle";
      ctx.fillText(title, width * (typeof L.title.x === "number" ? L.title.x : 0.02), (L.margin && L.margin.t || 100) / 2);
    }
    div.parentElement.classList.add("lab-preview", "lab-drawn");
    done();
  };
  const sources = (L.images || []).filter((im) => typeof im.source === "string");
  Promise.all(sources.map((im) => new Promise((ok) => {
    const img = new Image();
    img.onload = () => ok([im, img]);
    img.onerror = () => ok(null);
    img.src = im.source;
  }))).then((loaded) => paint(loaded.filter(Boolean)));
}

// Figures may come from the page (a rerun) and from the feed (polled) in any order: `v` (the picture's time)
// keeps an older one from replacing a newer one. Draws are chained, one Plotly call at a time.
function show(div, canvas, fig) {
  if (typeof fig.v === "number") {
    if (typeof div.__labV === "number" && fig.v < div.__labV) return;  // an older picture
    // the picture already shown, at the same size: a page rerun repeats what the feed brought
    const key = fig.v + "|" + (fig.layout && fig.layout.height);
    if (div.__labKey === key) return;
    div.__labV = fig.v;
    div.__labKey = key;
  }
  if (fig.layout && typeof fig.layout.height === "number") div.style.minHeight = fig.layout.height + "px";  // no jump when plotly draws
  let first = Promise.resolve();
  if (!div._fullLayout && previewable(fig)) {
    // plotly's first drawing of a chart costs 50-100 ms, and a page's panels queue behind one another: the
    // preview (under a millisecond) goes first even when plotly.js is already there, and plotly follows
    // after the browser has shown it
    first = new Promise((painted) => preview(div, canvas, (div.__labPreviewFig = fig), painted))
      .then(() => new Promise((shown) => {  // a hidden tab has no frames: plotly then goes on after 100 ms
        requestAnimationFrame(() => setTimeout(shown, 0));
        setTimeout(shown, 100);
      }));
  }
  div.__labChain = (div.__labChain || Promise.resolve()).then(() => first).then(() => drawFigure(div, canvas, fig));
}

// A live panel with a feed (lab/live/feed.py) fetches its picture while its run trains: the page does not
// rerun for it. A feed's address is "<file>#<panel>": one file holds a session's panels, so a tick fetches each
// file once for all the panels in it (nine panels' own files cost the server and the browser ~0.2 of a core
// more in requests alone), and a file that did not change is not parsed (its text is compared first).
// Every fed panel of the page is drawn in the same task, so the browser renders one frame for all the panels
// that changed instead of one per panel: a frame has costs that do not depend on how much changed (style,
// layerizing the whole page, hit-testing under the mouse).
function poll(div, canvas) {
  const fed = window.__labFed || (window.__labFed = new Map());  // div -> its canvas
  fed.set(div, canvas);
  if (window.__labTicking) return;
  window.__labTicking = true;
  const seen = new Map();  // file -> the text last parsed
  const tick = () => {
    for (const d of [...fed.keys()]) if (!d.__labFeed || !d.__labFeed.live || !d.isConnected) fed.delete(d);
    if (!fed.size) { window.__labTicking = false; return; }
    const files = new Map();  // file -> [[div, canvas, panel], ...]
    for (const [d, c] of fed.entries()) {
      const [file, panel] = d.__labFeed.url.split("#");
      if (!files.has(file)) files.set(file, []);
      files.get(file).push([d, c, panel]);
    }
    const every = Math.min(...[...fed.keys()].map((d) => d.__labFeed.every));
    const started = performance.now();  // a tick every `every` ms, however long its fetches took
    Promise.all([...files.keys()].map((file) => fetch(file, { cache: "no-store" })
      .then((r) => (r.ok ? r.text() : null))
      .catch(() => null)
      .then((text) => [file, text])))
      .then((got) => {
        const drawn = [];
        for (const [file, text] of got) {
          if (!text) continue;
          let last = seen.get(file);
          if (!last || last.text !== text) {
            try { last = { text, panels: JSON.parse(text).panels || {} }; } catch (e) { continue; }  // a torn file: the next tick reads it whole
            seen.set(file, last);
          }
          for (const [d, c, panel] of files.get(file)) {  // a panel mounted since still gets the file's picture
            if (d.__labFeedText === text || !last.panels[panel]) continue;
            d.__labFeedText = text;
            show(d, c, last.panels[panel]);
            drawn.push(d);
          }
        }
        return Promise.all(drawn.map((d) => d.__labChain));
      })
      .catch(() => {})
      .finally(() => setTimeout(tick, Math.max(0, every - (performance.now() - started))));
  };
  tick();
}

export default function (component) {
  const { parentElement, data } = component;
  if (!window.__labPlotly) {  // one <script> per page, shared by every live chart
    window.__labPlotly = new Promise((ok, fail) => {
      const s = document.createElement("script");
      s.src = "./app/static/plotly.min.js";
      s.onload = () => ok(window.Plotly);
      s.onerror = () => { window.__labPlotly = null; fail(new Error("plotly.js did not load")); };
      document.head.appendChild(s);
    });
    window.__labPlotly.catch(() => {});  // a chart that needs it says so; the preload has no one to tell
  }
  if (data instanceof Uint8Array || data === '{"preload":true}') {  // the router's invisible first element (bytes, pages/live_chart.py): loading was all
    const cell = parentElement.closest('[data-testid="stElementContainer"]');
    if (cell) cell.style.display = "none";  // no gap in the page's layout
    return;
  }
  let box = parentElement.querySelector(".lab-live-chart-box");
  if (!box) {
    box = document.createElement("div");
    box.className = "lab-live-chart-box";
    box.style.position = "relative";
    box.style.width = "100%";
    const div = document.createElement("div");
    div.className = "lab-live-chart";
    div.style.width = "100%";
    const canvas = document.createElement("canvas");
    canvas.className = "lab-live-points";
    canvas.style.position = "absolute";
    canvas.style.left = "0";
    canvas.style.top = "0";
    canvas.style.pointerEvents = "none";  // zoom, pan and hover go to plotly underneath
    box.appendChild(div);
    box.appendChild(canvas);
    parentElement.appendChild(box);
  }
  const div = box.querySelector(".lab-live-chart");
  const canvas = box.querySelector(".lab-live-points");
  const cleanup = () => { div.__labFeed = null; if (window.Plotly) window.Plotly.purge(div); div.__labHooked = false; };
  if (div.__labSpec === data) return cleanup;  // the same figure again (a rerun with no new snapshot): nothing to draw
  div.__labSpec = data;
  const fig = JSON.parse(data);
  div.__labFeed = fig.feed ? { url: fig.feed, live: !!fig.live, every: fig.every || 200 } : null;
  if (fig.data !== undefined || fig.layout !== undefined) show(div, canvas, fig);  // else only where to fetch
  if (div.__labFeed && div.__labFeed.live) poll(div, canvas);
  return cleanup;
}
