// A brush to paint a distribution (see `draw_points` in pages/ui.py).
//
// The painting is one density level (0-4) per cell of a GRID x GRID grid over the drawing window
// (lab/data.py: BRUSH_GRID, DRAW_BOUNDS); painting sets the cells under the brush to the chosen density,
// the eraser sets them to 0. When a stroke ends the levels go to Python as a string of digits, which
// turns them into points (lab.data.points_from_paint) and sends the points back to be drawn here.
// Mouse, pen and touch all arrive as pointer events.

function paintDisk(st, gx, gy, r, level) {
  const G = st.grid;
  for (let j = Math.max(0, Math.floor(gy - r)); j <= Math.min(G - 1, Math.ceil(gy + r)); j++) {
    for (let i = Math.max(0, Math.floor(gx - r)); i <= Math.min(G - 1, Math.ceil(gx + r)); i++) {
      const dx = i + 0.5 - gx, dy = j + 0.5 - gy;
      if (dx * dx + dy * dy <= r * r) st.levels[j * G + i] = level;
    }
  }
}

function draw(st) {
  const { canvas, grid: G, levels, points, bounds } = st;
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, c = W / G;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fafafa";
  ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = "#e4e4e4";
  ctx.lineWidth = 1;
  const [x0, x1, y0, y1] = bounds;
  for (let v = Math.ceil(x0); v <= x1; v++) {  // unit lines, the axes darker
    const px = ((v - x0) / (x1 - x0)) * W, py = H - ((v - y0) / (y1 - y0)) * H;
    ctx.strokeStyle = v === 0 ? "#bbb" : "#e4e4e4";
    ctx.beginPath(); ctx.moveTo(px, 0); ctx.lineTo(px, H); ctx.stroke();
    ctx.beginPath(); ctx.moveTo(0, py); ctx.lineTo(W, py); ctx.stroke();
  }
  for (let k = 0; k < levels.length; k++) {
    if (!levels[k]) continue;
    ctx.fillStyle = `rgba(214, 39, 40, ${0.08 + 0.06 * levels[k]})`;
    ctx.fillRect((k % G) * c, H - (Math.floor(k / G) + 1) * c, c, c);
  }
  if (points && !st.dirty) {
    ctx.fillStyle = "#1f3b73";
    for (let k = 0; k + 1 < points.length; k += 2) {
      const px = ((points[k] - x0) / (x1 - x0)) * W, py = H - ((points[k + 1] - y0) / (y1 - y0)) * H;
      ctx.fillRect(px - 1, py - 1, 2, 2);
    }
  }
}

function control(html) {
  const t = document.createElement("template");
  t.innerHTML = html.trim();
  return t.content.firstChild;
}

export default function (component) {
  const { parentElement, data, setStateValue } = component;
  let st = parentElement.__labBrush;
  if (!st) {
    const box = document.createElement("div");
    box.className = "lab-brush";
    const bar = control('<div style="display:flex;gap:12px;align-items:center;flex-wrap:wrap;margin-bottom:6px;font-size:14px"></div>');
    const size = control('<label>Brush <input class="lab-brush-size" type="range" min="1" max="8" value="3"></label>');
    const dens = control('<label>Density <input class="lab-brush-density" type="range" min="1" max="4" value="2"></label>');
    const erase = control('<label><input class="lab-brush-eraser" type="checkbox"> Eraser</label>');
    const clear = control('<button class="lab-brush-clear" type="button">Clear</button>');
    bar.append(size, dens, erase, clear);
    const canvas = document.createElement("canvas");
    canvas.className = "lab-brush-canvas";
    canvas.width = 512; canvas.height = 512;
    canvas.style.cssText = "width:min(100%, 420px);aspect-ratio:1;border:1px solid #ccc;touch-action:none;cursor:crosshair";
    box.append(bar, canvas);
    parentElement.appendChild(box);
    st = parentElement.__labBrush = { canvas, grid: 0, levels: null, points: null, sent: null, down: false, dirty: false };
    const send = () => {
      st.dirty = false;
      st.sent = Array.from(st.levels).join("");
      st.setStateValue("levels", st.sent);
    };
    const at = (e) => {
      const r = canvas.getBoundingClientRect();
      return [((e.clientX - r.left) / r.width) * st.grid, (1 - (e.clientY - r.top) / r.height) * st.grid];
    };
    const stroke = (e) => {
      const [gx, gy] = at(e);
      const radius = Number(size.querySelector("input").value) * st.grid / 64;
      const level = erase.querySelector("input").checked ? 0 : Number(dens.querySelector("input").value);
      const [px, py] = st.last || [gx, gy];
      const steps = Math.max(1, Math.ceil(Math.hypot(gx - px, gy - py) / Math.max(radius / 2, 0.5)));
      for (let s = 1; s <= steps; s++) paintDisk(st, px + ((gx - px) * s) / steps, py + ((gy - py) * s) / steps, radius, level);
      st.last = [gx, gy];
      st.dirty = true;
      draw(st);
    };
    canvas.addEventListener("pointerdown", (e) => {
      st.down = true; st.last = null;
      canvas.setPointerCapture(e.pointerId);
      stroke(e);
    });
    canvas.addEventListener("pointermove", (e) => { if (st.down) stroke(e); });
    const up = () => { if (st.down) { st.down = false; st.last = null; send(); } };
    canvas.addEventListener("pointerup", up);
    canvas.addEventListener("pointercancel", up);
    clear.addEventListener("click", () => { st.levels.fill(0); st.points = null; draw(st); send(); });
  }
  st.setStateValue = setStateValue;
  st.grid = data.grid;
  st.bounds = data.bounds;
  // adopt Python's painting unless the user is mid-stroke or it is the echo of what was just sent
  if (!st.down && (st.levels === null || data.levels !== Array.from(st.levels).join(""))) {
    if (st.levels === null || data.levels !== st.sent || !st.dirty) {
      st.levels = Uint8Array.from(data.levels, (ch) => Number(ch));
      st.dirty = false;
    }
  }
  if (!st.down) st.points = data.points;
  draw(st);
  parentElement.dataset.points = String(data.points ? data.points.length / 2 : 0);
}
