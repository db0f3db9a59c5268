// A brush and an eraser on an accepted mask being corrected. The mask's pixels are painted in
// the browser (a disc per pointer position) and sent back as uncompressed COCO RLE (runs over
// the pixels in column-major order, starting with zeros), which the server decodes, checks and
// stores re-encoded, as it does any mask. The overlay shows the strokes as they are made.

import { decode } from "./rle.js";

export class MaskBrush {
  constructor(rle, colour) {
    const { width, height, mask } = decode(rle);
    this.width = width;
    this.height = height;
    this.mask = mask;
    this.canvas = document.createElement("canvas");
    this.canvas.width = width;
    this.canvas.height = height;
    this.ctx = this.canvas.getContext("2d");
    this.colour = `rgba(${colour.slice(0, 3).join(",")},${colour[3] / 255})`;
    const image = new ImageData(width, height);
    for (let i = 0; i < mask.length; i += 1) if (mask[i]) image.data.set(colour, i * 4);
    this.ctx.putImageData(image, 0, 0);
  }

  // Set (brush) or clear (eraser) the pixels whose centres lie within `radius` of `point`.
  paint([cx, cy], set, radius) {
    const { width, height, mask } = this;
    const r2 = radius * radius;
    const y0 = Math.max(0, Math.floor(cy - radius));
    const y1 = Math.min(height - 1, Math.ceil(cy + radius));
    const x0 = Math.max(0, Math.floor(cx - radius));
    const x1 = Math.min(width - 1, Math.ceil(cx + radius));
    for (let y = y0; y <= y1; y += 1) {
      for (let x = x0; x <= x1; x += 1) {
        if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r2) mask[y * width + x] = set ? 1 : 0;
      }
    }
    // The overlay follows pixel by pixel: cleared, then the disc's set pixels redrawn.
    this.ctx.clearRect(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    this.ctx.fillStyle = this.colour;
    for (let y = y0; y <= y1; y += 1) {
      for (let x = x0; x <= x1; x += 1) if (mask[y * width + x]) this.ctx.fillRect(x, y, 1, 1);
    }
  }

  get area() {
    let n = 0;
    for (const v of this.mask) n += v;
    return n;
  }

  rle() {
    const { width, height, mask } = this;
    const counts = [];
    let current = 0;
    let run = 0;
    for (let x = 0; x < width; x += 1) {
      for (let y = 0; y < height; y += 1) {
        const v = mask[y * width + x];
        if (v !== current) {
          counts.push(run);
          run = 0;
          current = v;
        }
        run += 1;
      }
    }
    counts.push(run);
    return { size: [height, width], counts };
  }
}
