// What every frame viewer shares (the annotators' workspace, the inspectors' case page): frame
// images loaded once each, a status line for short messages, and layer-to-layer moves.

// `urlOf(id)` gives a frame's image URL; the loader answers one promise per frame, and forgets a
// failed load so that showing the frame again retries it.
export function imageLoader(urlOf) {
  const images = new Map();
  return (id) => {
    if (!images.has(id)) {
      images.set(id, new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => {
          images.delete(id);
          reject(new Error("The frame image could not be loaded; try the frame again."));
        };
        img.src = urlOf(id);
      }));
    }
    return images.get(id);
  };
}

// A status line: `flash(message, kind)` shows a message, errors longer than the rest.
export function statusLine(element, { shownMs = 3500, errorMs = 9000 } = {}) {
  let timer = null;
  return (message, kind = "info") => {
    element.textContent = message;
    element.dataset.kind = kind;
    clearTimeout(timer);
    timer = setTimeout(() => { element.textContent = ""; }, kind === "error" ? errorMs : shownMs);
  };
}

// The index of the first frame `step` layers away from frame `index`, or -1 when there is none.
export function layerStep(frames, index, step) {
  const target = frames[index].layerPos + step;
  return frames.findIndex((f) => f.layerPos === target);
}
