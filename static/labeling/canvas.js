// The frame viewer: draws one frame with its mask overlays and prompts, zooms (wheel, +/-),
// pans (space+drag, middle button) and turns pointer gestures into prompts in frame pixels:
// click = point on the object, shift/alt/right click = point off it, drag = box.

const DRAG_PX = 5; // a press that moves less than this is a click, not a box
const FIT_PAD = 16;
const FIT_PAD_BOTTOM = 60; // clear of the tool bar along the stage's foot
const POSITIVE = "#34d399";
const NEGATIVE = "#f87171";

export class Viewer {
  constructor(canvas, { onPoint, onBox, onZoom, onPaint }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.onPoint = onPoint;
    this.onBox = onBox;
    // With a paint mode ("brush" or "eraser"), a press and its drag paint instead of prompting.
    this.onPaint = onPaint || (() => {});
    this.paintMode = null;
    this.onZoom = onZoom || (() => {});
    this.scene = { image: null, overlays: [], prompts: null, dim: false };
    this.scale = 1;
    this.ox = 0;
    this.oy = 0;
    this.gesture = null;
    this.spaceHeld = false;
    this.frameRequested = false;
    this.fitted = true; // fit the frame until the annotator zooms or pans
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
    this.listen();
  }

  get size() {
    const image = this.scene.image;
    return image ? { width: image.naturalWidth, height: image.naturalHeight } : null;
  }

  show(scene, { fit = false } = {}) {
    this.scene = { ...this.scene, ...scene };
    if (fit) this.fit();
    this.redraw();
  }

  resize() {
    const dpr = window.devicePixelRatio || 1;
    const { clientWidth: w, clientHeight: h } = this.canvas.parentElement;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.canvas.style.width = `${w}px`;
    this.canvas.style.height = `${h}px`;
    if (this.fitted) this.fit();
    this.redraw();
  }

  fitScale() {
    const size = this.size;
    const { clientWidth: w, clientHeight: h } = this.canvas.parentElement;
    if (!size || !w || !h) return 1;
    return Math.min((w - 2 * FIT_PAD) / size.width, (h - FIT_PAD - FIT_PAD_BOTTOM) / size.height);
  }

  isFit() {
    return this.fitted;
  }

  fit() {
    const size = this.size;
    if (!size) return;
    const { clientWidth: w, clientHeight: h } = this.canvas.parentElement;
    this.scale = this.fitScale();
    this.ox = (w - size.width * this.scale) / 2;
    this.oy = FIT_PAD + (h - FIT_PAD - FIT_PAD_BOTTOM - size.height * this.scale) / 2;
    this.fitted = true;
    this.onZoom(this.scale);
    this.redraw();
  }

  // Zoom by `factor` keeping the frame point under (cx, cy) (canvas CSS px) where it is.
  zoomAt(factor, cx, cy) {
    if (!this.size) return;
    const fit = this.fitScale();
    const scale = Math.min(Math.max(this.scale * factor, fit * 0.5), Math.max(fit * 64, 32));
    this.ox = cx - ((cx - this.ox) * scale) / this.scale;
    this.oy = cy - ((cy - this.oy) * scale) / this.scale;
    this.scale = scale;
    this.fitted = false;
    this.onZoom(scale);
    this.redraw();
  }

  zoomCentre(factor) {
    const { clientWidth: w, clientHeight: h } = this.canvas;
    this.zoomAt(factor, w / 2, h / 2);
  }

  toFrame(clientX, clientY) {
    const rect = this.canvas.getBoundingClientRect();
    return [(clientX - rect.left - this.ox) / this.scale, (clientY - rect.top - this.oy) / this.scale];
  }

  inside([x, y]) {
    const size = this.size;
    return size && x >= 0 && y >= 0 && x <= size.width && y <= size.height;
  }

  clamp([x, y]) {
    const { width, height } = this.size;
    return [Math.min(Math.max(x, 0), width), Math.min(Math.max(y, 0), height)];
  }

  listen() {
    const c = this.canvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = c.getBoundingClientRect();
      this.zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
    c.addEventListener("pointerdown", (e) => this.press(e));
    // The middle button pans here; Chrome would start its autoscroll.
    c.addEventListener("mousedown", (e) => { if (e.button === 1) e.preventDefault(); });
    c.addEventListener("pointermove", (e) => this.move(e));
    c.addEventListener("pointerup", (e) => this.release(e));
    c.addEventListener("pointercancel", () => { this.gesture = null; this.redraw(); });
    window.addEventListener("keydown", (e) => {
      if (e.code === "Space" && !isTyping(e.target)) {
        e.preventDefault();
        this.spaceHeld = true;
        c.classList.add("panning");
      }
    });
    window.addEventListener("keyup", (e) => {
      if (e.code !== "Space") return;
      this.spaceHeld = false;
      c.classList.remove("panning");
    });
  }

  setPaint(mode) {
    this.paintMode = mode;
    this.canvas.classList.toggle("painting", Boolean(mode));
  }

  press(e) {
    if (!this.size) return;
    this.canvas.setPointerCapture(e.pointerId);
    const pan = e.button === 1 || (e.button === 0 && this.spaceHeld);
    if (this.paintMode && !pan) {
      this.gesture = { paint: true };
      this.onPaint(this.clamp(this.toFrame(e.clientX, e.clientY)), { start: true });
      return;
    }
    const label = e.button === 2 || e.shiftKey || e.altKey ? 0 : 1;
    this.gesture = { pan, label, x: e.clientX, y: e.clientY, start: this.toFrame(e.clientX, e.clientY) };
    if (pan) e.preventDefault();
  }

  move(e) {
    const g = this.gesture;
    if (!g) return;
    if (g.paint) {
      this.onPaint(this.clamp(this.toFrame(e.clientX, e.clientY)), { start: false });
      return;
    }
    if (g.pan) {
      this.ox += e.clientX - g.x;
      this.oy += e.clientY - g.y;
      g.x = e.clientX;
      g.y = e.clientY;
      this.fitted = false;
      this.redraw();
    } else if (g.box || Math.hypot(e.clientX - g.x, e.clientY - g.y) > DRAG_PX) {
      g.box = [this.clamp(g.start), this.clamp(this.toFrame(e.clientX, e.clientY))];
      this.redraw();
    }
  }

  release(e) {
    const g = this.gesture;
    this.gesture = null;
    if (!g || g.pan || g.paint) return;
    if (g.box) {
      const [[ax, ay], [bx, by]] = g.box;
      const box = [Math.min(ax, bx), Math.min(ay, by), Math.max(ax, bx), Math.max(ay, by)];
      if (box[2] - box[0] >= 1 && box[3] - box[1] >= 1) this.onBox(box.map(round1));
      this.redraw();
    } else if (this.inside(g.start)) {
      this.onPoint(g.start.map(round1), g.label);
    }
  }

  redraw() {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame(() => {
      this.frameRequested = false;
      this.draw();
    });
  }

  draw() {
    const { ctx, canvas, scene } = this;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    canvas.dataset.scale = this.scale;
    canvas.dataset.ox = this.ox;
    canvas.dataset.oy = this.oy;
    if (!scene.image) return;
    // The frame on screen, for tests and for whoever inspects the page: an opaque id.
    canvas.dataset.frame = scene.key || "";
    ctx.setTransform(dpr * this.scale, 0, 0, dpr * this.scale, dpr * this.ox, dpr * this.oy);
    // Past 3x, show pixels as pixels: annotators zoom in to judge a boundary.
    ctx.imageSmoothingEnabled = this.scale < 3;
    ctx.drawImage(scene.image, 0, 0);
    if (scene.dim) {
      ctx.fillStyle = "rgba(17, 20, 24, 0.55)";
      ctx.fillRect(0, 0, scene.image.naturalWidth, scene.image.naturalHeight);
    }
    for (const overlay of scene.overlays) {
      ctx.globalAlpha = overlay.alpha ?? 1;
      ctx.drawImage(overlay.canvas, 0, 0);
    }
    ctx.globalAlpha = 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.drawPrompts(scene.prompts, this.gesture && this.gesture.box);
  }

  screen([x, y]) {
    return [this.ox + x * this.scale, this.oy + y * this.scale];
  }

  drawPrompts(prompts, dragging) {
    const { ctx } = this;
    const box = dragging ? [...dragging[0], ...dragging[1]] : prompts && prompts.box;
    if (box) {
      const [x0, y0] = this.screen([box[0], box[1]]);
      const [x1, y1] = this.screen([box[2], box[3]]);
      ctx.lineWidth = 3;
      ctx.strokeStyle = "rgba(0, 0, 0, 0.55)";
      ctx.setLineDash([]);
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = "#f4f6f8";
      ctx.setLineDash([6, 4]);
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      ctx.setLineDash([]);
    }
    if (!prompts) return;
    prompts.points.forEach((point, i) => {
      const [x, y] = this.screen(point);
      const positive = prompts.labels[i] === 1;
      ctx.beginPath();
      ctx.arc(x, y, 6.5, 0, 2 * Math.PI);
      ctx.fillStyle = positive ? POSITIVE : NEGATIVE;
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#111418";
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(x - 3, y);
      ctx.lineTo(x + 3, y);
      if (positive) {
        ctx.moveTo(x, y - 3);
        ctx.lineTo(x, y + 3);
      }
      ctx.lineWidth = 1.6;
      ctx.stroke();
    });
  }
}

function round1(v) {
  return Math.round(v * 10) / 10;
}

// Keys go to a field that takes text; a focused radio button or checkbox keeps the shortcuts.
export function isTyping(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.tagName === "INPUT") return !["radio", "checkbox", "button", "submit"].includes(target.type);
  return target.isContentEditable || ["TEXTAREA", "SELECT"].includes(target.tagName);
}
