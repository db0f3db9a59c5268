// The filmstrip: one thumbnail per layer (its keyframe), and under the current layer its other
// eligible frames as numbered chips. Marks excluded frames and frames with masks.

export function frameList(layers) {
  const frames = [];
  layers.forEach((layer, li) => {
    layer.frames.forEach((frame, fi) => {
      frames.push({ ...frame, layerPos: li, pos: fi, count: layer.frames.length });
    });
  });
  return frames;
}

export class Filmstrip {
  constructor(nav, { frames, imageUrl, onPick }) {
    this.nav = nav;
    this.frames = frames;
    this.onPick = onPick;
    this.layers = [];
    const byLayer = new Map();
    for (const [i, frame] of frames.entries()) {
      if (!byLayer.has(frame.layerPos)) byLayer.set(frame.layerPos, []);
      byLayer.get(frame.layerPos).push(i);
    }
    for (const indices of byLayer.values()) this.layers.push(this.layerNode(indices, imageUrl));
  }

  layerNode(indices, imageUrl) {
    const key = this.frames[indices[0]];
    // Numbered by position: a layer without eligible frames is not shown, and leaves no gap.
    const number = key.layerPos + 1;
    const node = document.createElement("div");
    node.className = "strip-layer";
    const thumb = document.createElement("button");
    thumb.type = "button";
    thumb.className = "strip-key";
    thumb.dataset.frame = key.id;
    thumb.title = `Layer ${number}, keyframe`;
    const img = document.createElement("img");
    img.src = imageUrl(key.id);
    img.alt = "";
    img.loading = "lazy";
    const caption = document.createElement("span");
    caption.className = "strip-cap";
    caption.textContent = `Layer ${number}`;
    const marks = document.createElement("span");
    marks.className = "strip-marks";
    thumb.append(img, caption, marks);
    thumb.addEventListener("click", () => this.onPick(indices[0]));
    node.append(thumb);
    const chips = document.createElement("div");
    chips.className = "strip-frames";
    for (const i of indices) {
      const chip = document.createElement("button");
      chip.type = "button";
      chip.className = "strip-chip";
      chip.dataset.frame = this.frames[i].id;
      chip.textContent = String(this.frames[i].pos + 1);
      chip.title = `Layer ${number}, frame ${this.frames[i].pos + 1} of ${indices.length}`;
      chip.addEventListener("click", () => this.onPick(i));
      chips.append(chip);
    }
    if (indices.length > 1) node.append(chips);
    return { node, thumb, marks, chips: [...chips.children], indices };
  }

  mount() {
    this.nav.replaceChildren(...this.layers.map((l) => l.node));
  }

  // `excluded(frameId)` -> code label or null; `maskCount(frameId)` -> number.
  update(current, { excluded, maskCount }) {
    for (const layer of this.layers) {
      const here = layer.indices.includes(current);
      layer.node.classList.toggle("current", here);
      const ids = layer.indices.map((i) => this.frames[i].id);
      const masks = ids.reduce((n, id) => n + maskCount(id), 0);
      const out = ids.filter((id) => excluded(id)).length;
      const keyOut = excluded(ids[0]);
      layer.thumb.classList.toggle("excluded", Boolean(keyOut));
      layer.thumb.setAttribute("aria-current", here && current === layer.indices[0] ? "true" : "false");
      layer.marks.textContent = [
        out ? `${out} excluded` : "",
        masks ? `${masks} mask${masks === 1 ? "" : "s"}` : "",
      ].filter(Boolean).join(" · ");
      layer.chips.forEach((chip, k) => {
        const id = ids[k];
        chip.classList.toggle("excluded", Boolean(excluded(id)));
        chip.classList.toggle("masked", maskCount(id) > 0);
        chip.setAttribute("aria-current", layer.indices[k] === current ? "true" : "false");
      });
      if (here && current !== this.shown) layer.node.scrollIntoView({ block: "nearest" });
    }
    this.shown = current;
  }
}
