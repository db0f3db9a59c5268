// One adjudication case: every rater's masks over the frames, one colour per rater, each rater
// shown or hidden with a key; exclusions marked with the rater's failure code; the decision
// form. Everything it draws comes embedded in the page (json_script "adj-evidence"): raters by
// letter only. Reuses the annotators' viewer, filmstrip and RLE decoder.

import { Viewer } from "../labeling/canvas.js";
import { Filmstrip, frameList } from "../labeling/filmstrip.js";
import { imageLoader, layerStep, statusLine } from "../labeling/frames.js";
import { maskCanvas } from "../labeling/rle.js";
import { Decision } from "./decision.js";
import { bindKeys, renderHelp } from "./keys.js";

const $ = (id) => document.getElementById(id);
const root = $("case");
const evidence = JSON.parse($("adj-evidence").textContent);
const imageUrl = (f) => `${root.dataset.base}frames/${f}/image/`;
const FILL_ALPHA = 110;

const state = { frames: frameList(evidence.layers), current: 0, hidden: new Set(), prefix: null };
const colours = new Map(evidence.raters.map((r) => [r.letter, rgb(r.colour)]));
const letters = evidence.raters.map((r) => r.letter);
const masksOn = group(evidence.masks);
const exclusionsOn = group(evidence.exclusions);
const image = imageLoader(imageUrl);
const overlays = new Map();
const form = $("adj-decision");
const decision = form ? new Decision(form) : null;
const current = () => state.frames[state.current];
const flash = statusLine($("ws-status"), { shownMs: 3000 });

const viewer = new Viewer($("ws-canvas"), {
  onPoint: () => {}, // nothing to draw here: the page only looks
  onBox: () => {},
  onZoom: (scale) => { $("ws-zoom").textContent = `${Math.round(scale * 100)} %`; },
});
const filmstrip = new Filmstrip($("ws-strip"), {
  frames: state.frames, imageUrl, onPick: (i) => showFrame(i),
});

function group(items) {
  const byFrame = new Map();
  for (const item of items) {
    if (!byFrame.has(item.frame)) byFrame.set(item.frame, []);
    byFrame.get(item.frame).push(item);
  }
  return byFrame;
}

function rgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}



// Decoded once per mask; a mask whose RLE does not decode is reported, not drawn.
function overlay(mask) {
  if (!overlays.has(mask)) {
    let canvas = null;
    try {
      canvas = maskCanvas(mask.rle, [...colours.get(mask.rater), FILL_ALPHA], [...colours.get(mask.rater), 255]);
    } catch (error) {
      flash(`A mask of Rater ${mask.rater} cannot be drawn: ${error.message}`, "error");
    }
    overlays.set(mask, canvas);
  }
  return overlays.get(mask);
}

async function showFrame(index) {
  if (index < 0 || index >= state.frames.length) return;
  state.current = index;
  render();
  let img;
  try {
    img = await image(current().id);
  } catch (error) {
    flash(error.message, "error");
    return;
  }
  if (state.current !== index) return;
  viewer.show({ image: img, key: current().id }, { fit: viewer.isFit() || !viewer.size });
  render();
  for (const next of [index + 1, index - 1]) {
    if (state.frames[next]) image(state.frames[next].id).catch(() => {});
  }
}

function moveLayer(step) {
  const index = layerStep(state.frames, state.current, step);
  if (index >= 0) showFrame(index);
}

function visibleMasks(frameId) {
  return (masksOn.get(frameId) || []).filter((m) => !state.hidden.has(m.rater));
}

function excludedBy(frameId) {
  return exclusionsOn.get(frameId) || [];
}

function renderFrameInfo(frame) {
  const items = letters.map((letter) => {
    const li = document.createElement("li");
    li.dataset.rater = letter;
    li.style.setProperty("--rater", `rgb(${colours.get(letter).join(",")})`);
    const exclusion = excludedBy(frame.id).find((e) => e.rater === letter);
    const theirs = (masksOn.get(frame.id) || []).filter((m) => m.rater === letter);
    const count = theirs.length;
    // The inclusion kinds the rater gave their masks on this frame, e.g. "soil ×2, wood".
    const kinds = Object.entries(
      theirs.reduce((n, m) => ({ ...n, [m.kind]: (n[m.kind] || 0) + 1 }), {}),
    ).map(([kind, n]) => (n > 1 ? `${kind} ×${n}` : kind));
    li.classList.toggle("off", state.hidden.has(letter));
    li.classList.toggle("excluded", Boolean(exclusion));
    li.textContent = exclusion
      ? `Rater ${letter}: excluded, ${exclusion.code}${exclusion.note ? ` (${exclusion.note})` : ""}`
      : `Rater ${letter}: ${count} mask${count === 1 ? "" : "s"}${count ? ` (${kinds.join(", ")})` : ""}`;
    return li;
  });
  $("adj-frame-info").replaceChildren(...items);
}

function render() {
  const frame = current();
  if (!frame) return;
  const key = frame.pos === 0 ? " (keyframe)" : "";
  $("ws-where").textContent =
    `Layer ${frame.layerPos + 1} of ${filmstrip.layers.length} · frame ${frame.pos + 1} of ${frame.count}${key}`;
  const out = excludedBy(frame.id);
  $("adj-excluded-banner").hidden = !out.length;
  $("adj-excluded-banner").textContent =
    "Excluded by " + out.map((e) => `Rater ${e.rater} (${e.code})`).join(" · ");
  renderFrameInfo(frame);
  for (const button of $("adj-toggles").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(!state.hidden.has(button.dataset.rater)));
  }
  $("adj-grades")?.classList.toggle("armed", state.prefix === "g");
  $("adj-codes")?.classList.toggle("armed", state.prefix === "r");
  filmstrip.update(state.current, {
    excluded: (id) => (excludedBy(id).length ? excludedBy(id).map((e) => e.rater).join("") : null),
    maskCount: (id) => visibleMasks(id).length,
  });
  const drawn = visibleMasks(frame.id).map((m) => ({ mask: m, canvas: overlay(m) })).filter((o) => o.canvas);
  // Which raters' masks are on screen, for whoever inspects the page (tests, screen readers).
  $("adj-stage").dataset.drawn = [...new Set(drawn.map((o) => o.mask.rater))].join(" ");
  viewer.show({ overlays: drawn.map((o) => ({ canvas: o.canvas, alpha: 0.85 })) });
}

function toggleRater(n) {
  const letter = letters[n - 1];
  if (!letter) return;
  if (state.hidden.has(letter)) state.hidden.delete(letter);
  else state.hidden.add(letter);
  flash(`Rater ${letter}'s masks ${state.hidden.has(letter) ? "hidden" : "shown"}`);
  render();
}

function toggleAll() {
  const anyShown = letters.some((l) => !state.hidden.has(l));
  state.hidden = new Set(anyShown ? letters : []);
  flash(anyShown ? "All masks hidden" : "All masks shown");
  render();
}

function toggleHelp() {
  const help = $("ws-help");
  if (help.open) help.close();
  else help.showModal();
}

function go(url) {
  if (url) window.location.assign(url);
}

const actions = {
  nextFrame: () => showFrame(state.current + 1),
  previousFrame: () => showFrame(state.current - 1),
  nextLayer: () => moveLayer(1),
  previousLayer: () => moveLayer(-1),
  toggleRater,
  toggleAll,
  zoomIn: () => viewer.zoomCentre(1.25),
  zoomOut: () => viewer.zoomCentre(0.8),
  fit: () => viewer.fit(),
  help: toggleHelp,
  nextCase: () => go(root.dataset.nextUrl),
  queue: () => go(root.dataset.queueUrl),
  // Without a form (a closed case) the decision keys do nothing.
  focusContamination: () => decision?.focusContamination(),
  focusNote: () => decision?.focusNote(),
  submit: () => decision?.review(),
  grade: (n) => {
    const grade = decision?.choose("grade", n);
    if (grade) flash(`Grade ${grade}`);
  },
  rationale: (n) => {
    if (decision?.choose("rationale_code", n)) {
      flash(`Rationale: ${form.querySelector("input[name=rationale_code]:checked").dataset.label}`);
    }
  },
};

function wire() {
  bindKeys({
    act: (name, arg) => actions[name](arg),
    onPrefix: (prefix) => {
      if (!decision && prefix) return;
      state.prefix = prefix;
      if (prefix) flash(prefix === "g" ? "Grade: press 1–4" : "Rationale: press 1–6");
      render();
    },
    paused: () => $("ws-help").open || Boolean(decision?.open),
  });
  $("adj-toggles").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-rater]");
    if (button) toggleRater(letters.indexOf(button.dataset.rater) + 1);
  });
  $("ws-help-open").addEventListener("click", toggleHelp);
  $("ws-help-close").addEventListener("click", toggleHelp);
  renderHelp($("ws-shortcuts"), { decision: Boolean(decision) });
}

wire();
filmstrip.mount();
if (state.frames.length) showFrame(0);
else $("ws-where").textContent = "This railcar has no frames to show.";
