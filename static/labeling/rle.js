// COCO compressed RLE, decoded in the browser to draw masks. Mirrors labeling/rle.py, which
// mirrors pycocotools' rleFrString (maskApi.c): each count is cut into 5-bit chunks, least
// significant first, each offset by 48 into printable ASCII; bit 0x20 says "more chunks follow"
// and bit 0x10 of the last chunk is the sign; from the third count on, a count is stored as its
// difference to the count two places before. Runs alternate 0/1, starting with zeros, over the
// pixels in column-major (Fortran) order.

// Plain Number arithmetic, not 32-bit bitwise shifts: a frame of 1920x1080 pixels needs counts
// of 21 bits, and a sixth or seventh chunk would overflow `<<`.
export function countsFromString(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let value = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= text.length) throw new Error("RLE counts end in the middle of a value");
      const c = text.charCodeAt(p) - 48;
      if (c < 0 || c > 0x3f) throw new Error("RLE counts hold characters outside the COCO alphabet");
      value += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && (c & 0x10) !== 0) value -= 2 ** (5 * k);
    }
    if (counts.length > 2) value += counts[counts.length - 2];
    counts.push(value);
  }
  return counts;
}

// The H x W mask, row-major, one byte a pixel (1 = set).
export function decode(rle) {
  const [height, width] = rle.size;
  const counts = typeof rle.counts === "string" ? countsFromString(rle.counts) : rle.counts;
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== height * width) {
    throw new Error(`RLE counts cover ${total} pixels, not ${height} x ${width}`);
  }
  const mask = new Uint8Array(height * width);
  let position = 0;
  counts.forEach((run, i) => {
    if (run < 0) throw new Error("RLE counts must not be negative");
    if (i % 2 === 1) {
      for (let f = position; f < position + run; f += 1) {
        const col = Math.floor(f / height);
        mask[(f - col * height) * width + col] = 1;
      }
    }
    position += run;
  });
  return { width, height, mask };
}

// An offscreen canvas, frame-sized, with the mask filled in `fill` and its edge in `edge`
// (CSS-free RGBA arrays, 0-255): edges keep small masks visible over a busy image.
export function maskCanvas(rle, fill, edge) {
  const { width, height, mask } = decode(rle);
  const image = new ImageData(width, height);
  const px = image.data;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const i = y * width + x;
      if (!mask[i]) continue;
      const onEdge =
        x === 0 || y === 0 || x === width - 1 || y === height - 1 ||
        !mask[i - 1] || !mask[i + 1] || !mask[i - width] || !mask[i + width];
      px.set(onEdge ? edge : fill, i * 4);
    }
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(image, 0, 0);
  return canvas;
}
