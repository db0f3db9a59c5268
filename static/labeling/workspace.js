// The annotation workspace: loads the assignment from the annotator API and wires the filmstrip,
// the viewer, the mask tool, exclusions, the rating form and the keyboard together. An exclusion
// or a mask is saved the moment it is made, so a closed tab loses nothing but the open prompts.

import { api } from "./api.js";
import { Viewer } from "./canvas.js";
import { Filmstrip, frameList } from "./filmstrip.js";
import { imageLoader, layerStep, statusLine } from "./frames.js";
import { LeaseClock } from "./lease.js";
import { maskActions } from "./maskactions.js";
import { MaskTool } from "./masktool.js";
import { renderPanel } from "./panel.js";
import { RatingForm } from "./rating.js";
import { ReleaseDialog } from "./release.js";
import { maskCanvas } from "./rle.js";
import { bindShortcuts, renderHelp } from "./shortcuts.js";
import { ActiveTimer, clock } from "./timer.js";

const $ = (id) => document.getElementById(id);
const root = $("workspace");
const base = root.dataset.assignmentUrl;
const urls = {
  image: (f) => `${base}frames/${f}/image/`,
  exclusion: (f) => `${base}frames/${f}/exclusion/`,
  proposal: (f) => `${base}frames/${f}/mask-proposals/`,
  masks: (f) => `${base}frames/${f}/masks/`,
  mask: (m) => `${base}masks/${m}/`,
  rating: `${base}rating/`,
  release: `${base}release/`,
};
const MASK_FILL = [251, 191, 36, 100];
const MASK_EDGE = [254, 240, 138, 255];

const state = {
  frames: [], current: 0, exclusions: new Map(), masks: [], selected: null, editing: null,
  brush: null, paint: null, kind: "other", prefix: null, done: false, saving: false,
};
// The policy list of inclusion kinds, [value, label] pairs (labeling.InclusionKind).
const KINDS = JSON.parse($("ws-kinds").textContent);
const image = imageLoader((id) => urls.image(id));
const overlays = new Map();
const codeButtons = [...$("ws-codes").querySelectorAll("button")];
const codeLabel = (code) => codeButtons.find((b) => b.dataset.code === code)?.dataset.label || code;
const current = () => state.frames[state.current];

const tool = new MaskTool({ url: urls.proposal, onChange: () => render(), onError: fail });
const viewer = new Viewer($("ws-canvas"), {
  onPoint: (point, label) => prompt(() => tool.addPoint(point, label)),
  onBox: (box) => prompt(() => tool.setBox(box)),
  onZoom: (scale) => { $("ws-zoom").textContent = `${Math.round(scale * 100)} %`; },
  onPaint: (point, { start }) => {
    paintAt(point, start);
    render();
  },
});
const rating = new RatingForm({
  url: urls.rating, seconds: () => (timer ? timer.seconds : 0), onDone: finish, onError: fail,
});
const release = new ReleaseDialog({
  url: urls.release, onReleased: () => showGone("released"), onError: (error) => fail(error),
});
let filmstrip = null;
let timer = null;
let lease = null;
const flash = statusLine($("ws-status"), { shownMs: 3500 });

// Why the railcar is no longer the annotator's, by the assignment's status on the server.
const GONE = {
  released: ["You gave this railcar back", "It went back to the pool; nothing more is saved on it."],
  expired: ["The lease on this railcar has ended", "A rating or a change sent after the lease ends is not saved. Take the next railcar."],
};

function stopWork() {
  state.done = true;
  tool.reset(null);
  rating.close();
  timer?.stop();
  lease?.stop();
  $("ws-lease-warning").hidden = true;
  release.close();
  for (const field of $("ws-rating").elements) field.disabled = true;
}

function showGone(status) {
  stopWork();
  const [title, text] = GONE[status] || [];
  if (title) {
    $("ws-gone-title").textContent = title;
    $("ws-gone-text").textContent = text;
  }
  $("ws-gone").hidden = false;
}

// What the server holds now decides what the page shows: a recorded rating, a lease gone (and
// why), or the editable workspace while the lease runs.
function showServerState(data) {
  if (data.rating) {
    finish(data.rating, { already: true });
    return false;
  }
  if (data.status !== "active") {
    showGone(data.status);
    return false;
  }
  return true;
}

async function recheck() {
  let data;
  try {
    data = await api(base);
  } catch (error) {
    if (error.status === 404) showGone(null);
    return;
  }
  if (showServerState(data) && lease) lease.restart(data.seconds_left);
}

function fail(error) {
  if (error.leaseGone) {
    // A 409 says only "not active": ask why, so the cover tells the truth (rated, given back,
    // or ended), and stop all work meanwhile.
    stopWork();
    recheck();
  } else {
    flash(error.message, "error");
  }
}

function prompt(change) {
  if (state.done) return;
  if (state.brush) {
    flash("Keep the painted correction (Enter) or drop it (Esc) before adding clicks.");
    return;
  }
  if (state.exclusions.has(current().id)) {
    flash("This frame is excluded: include it again (x) to draw masks on it.");
    return;
  }
  change();
}


function overlay(mask) {
  if (!overlays.has(mask.id)) overlays.set(mask.id, maskCanvas(mask.rle, MASK_FILL, MASK_EDGE));
  return overlays.get(mask.id);
}

async function showFrame(index) {
  if (index < 0 || index >= state.frames.length) return;
  const before = viewer.size;
  const keepView = before && !viewer.isFit();
  state.current = index;
  state.selected = null;
  if (state.editing) stopEditing(); // a correction belongs to its frame
  tool.reset(current().id);
  render();
  let img;
  try {
    img = await image(current().id);
  } catch (error) {
    flash(error.message, "error");
    return;
  }
  if (state.current !== index) return;
  // Frames of one railcar share a size: keep the zoom the annotator chose while comparing them.
  const same = keepView && before.width === img.naturalWidth && before.height === img.naturalHeight;
  viewer.show({ image: img, key: current().id }, { fit: !same });
  render();
  for (const next of [index + 1, index - 1]) {
    if (state.frames[next]) image(state.frames[next].id).catch(() => {});
  }
}

function moveLayer(step) {
  const index = layerStep(state.frames, state.current, step);
  if (index >= 0) showFrame(index);
}

function render() {
  const frame = current();
  if (!frame) return;
  const masks = state.masks.filter((m) => m.frame === frame.id);
  renderPanel({ state, frame, masks, tool, codeLabel, layers: filmstrip.layers.length, kinds: KINDS });
  filmstrip.update(state.current, {
    excluded: (id) => state.exclusions.get(id)?.code || null,
    maskCount: (id) => state.masks.filter((m) => m.frame === id).length,
  });
  const fresh = tool.proposal && JSON.stringify(tool.proposal.prompts) === JSON.stringify(tool.prompts);
  viewer.show({
    overlays: [
      // The mask being corrected is drawn by its proposal or its brush strokes instead.
      ...masks
        .filter((m) => !(m.id === state.editing && (tool.proposal || state.brush)))
        .map((m) => ({ canvas: overlay(m), alpha: m.id === state.selected ? 1 : 0.6 })),
      ...(state.brush ? [{ canvas: state.brush.canvas, alpha: 1 }] : []),
      ...(tool.proposal ? [{ canvas: tool.proposal.canvas, alpha: fresh ? 1 : 0.5 }] : []),
    ],
    prompts: tool.prompts,
    dim: state.exclusions.has(frame.id),
  });
  updateRateable();
}

// One change is saved at a time, in the order the annotator made them.
async function saving(work) {
  if (state.done) return;
  if (state.saving) {
    flash("Still saving the last change; try again in a moment.");
    return;
  }
  state.saving = true;
  try {
    await work();
  } catch (error) {
    fail(error);
  } finally {
    state.saving = false;
    render();
  }
}

const exclude = (code) => saving(async () => {
  const frame = current();
  const note = $("ws-note").value.trim();
  const exclusion = await api(urls.exclusion(frame.id), { method: "PUT", body: { code, note } });
  state.exclusions.set(frame.id, exclusion);
  $("ws-note").value = "";
  tool.reset(frame.id);
  flash(`Frame excluded: ${codeLabel(code)}`);
});

const include = () => saving(async () => {
  const frame = current();
  await api(urls.exclusion(frame.id), { method: "DELETE" });
  state.exclusions.delete(frame.id);
  flash("Frame included again");
});

const { accept, deleteMask, startEditing, stopEditing, changeKind, setPaint, paintAt } = maskActions({
  state, tool, urls, overlays, saving, flash, current, viewer,
});

function finish(recorded, { already = false } = {}) {
  const seconds = timer && !already ? timer.seconds : 0;
  stopWork();
  $("ws-gone").hidden = true;
  $("ws-done-already").hidden = !already;
  // The form shows what the server recorded, not what the browser restored on Back.
  $("ws-rating").elements.contamination_pct.value = recorded.contamination_pct;
  for (const radio of $("ws-rating").elements.grade) radio.checked = radio.value === recorded.grade;
  $("ws-done-summary").textContent =
    `${$("ws-pseudonym").textContent}: contamination ${recorded.contamination_pct} %, ` +
    `grade ${recorded.grade}` + (seconds ? `, ${clock(seconds)} of active time.` : ".");
  $("ws-done").hidden = false;
  render();
  $("ws-next").focus();
}

// A railcar whose every frame is excluded has nothing to rate: offer the release instead.
function updateRateable() {
  const left = state.frames.filter((f) => !state.exclusions.has(f.id)).length;
  const nothing = !state.done && filmstrip !== null && left === 0;
  $("ws-nothing-left").hidden = !nothing;
  if (!state.done && !rating.pending) $("ws-submit").disabled = nothing;
}

function startLease(secondsLeft) {
  const shown = $("ws-lease");
  lease = new LeaseClock(secondsLeft, {
    onTick: (left, text) => { $("ws-lease-left").textContent = `${text} left`; },
    onWarn: (left) => {
      shown.classList.add("ws-lease-warn");
      const minutes = Math.max(1, Math.round(left / 60));
      $("ws-lease-warning").textContent =
        `The lease ends in ${minutes === 1 ? "about a minute" : `${minutes} minutes`}: ` +
        "submit the rating or release the railcar; after that nothing is saved.";
      $("ws-lease-warning").hidden = false;
    },
    // The server has the last word: one second's grace for the clocks, then ask it.
    onEnd: () => setTimeout(recheck, 1000),
  });
}

function toggle(dialog) {
  if (dialog.open) dialog.close();
  else dialog.showModal();
}
const toggleHelp = () => toggle($("ws-help"));
const toggleGuidelines = () => toggle($("ws-guidelines"));
const DIALOGS = ["ws-help", "ws-guidelines", "ws-release"];

const actions = {
  accept, undo: () => tool.undo(), deleteMask, submit: () => rating.submit(), help: toggleHelp,
  guidelines: toggleGuidelines,
  clear: () => {
    if (state.editing) { stopEditing(); render(); }
    else if (!tool.empty) tool.clear();
    else if (state.selected) { state.selected = null; render(); }
  },
  nextFrame: () => showFrame(state.current + 1),
  previousFrame: () => showFrame(state.current - 1),
  nextLayer: () => moveLayer(1),
  previousLayer: () => moveLayer(-1),
  zoomIn: () => viewer.zoomCentre(1.25),
  zoomOut: () => viewer.zoomCentre(0.8),
  fit: () => viewer.fit(),
  focusContamination: () => rating.focusContamination(),
  exclude: () => {
    if (!state.exclusions.has(current().id)) return true; // wait for the code
    include();
    return false;
  },
  excludeAs: (n) => codeButtons[n - 1] && exclude(codeButtons[n - 1].dataset.code),
  grade: (n) => {
    const grade = rating.chooseGrade(n);
    if (grade) flash(`Grade ${grade}`);
  },
};

function wire() {
  bindShortcuts({
    act: (name, arg) => (state.done && !["help", "guidelines"].includes(name) ? false : actions[name](arg)),
    onPrefix: (prefix) => {
      if (state.done) return;
      state.prefix = prefix;
      if (prefix) flash(prefix === "x" ? "Exclude as: press 1–8" : "Grade: press 1–4");
      render();
    },
    paused: () => DIALOGS.some((id) => $(id).open),
  });
  codeButtons.forEach((b) => b.addEventListener("click", () => exclude(b.dataset.code)));
  $("ws-include").addEventListener("click", () => include());
  $("ws-accept").addEventListener("click", () => accept());
  $("ws-undo").addEventListener("click", () => tool.undo());
  $("ws-brush").addEventListener("click", () => { setPaint("brush"); render(); });
  $("ws-eraser").addEventListener("click", () => { setPaint("eraser"); render(); });
  $("ws-clear").addEventListener("click", () => (state.editing ? (stopEditing(), render()) : tool.clear()));
  $("ws-help-open").addEventListener("click", toggleHelp);
  $("ws-help-close").addEventListener("click", toggleHelp);
  $("ws-guidelines-open").addEventListener("click", toggleGuidelines);
  $("ws-guidelines-close").addEventListener("click", toggleGuidelines);
  $("ws-release-open").addEventListener("click", () => state.done || release.show());
  $("ws-release-unusable").addEventListener("click", (e) => state.done || release.show(e.target.dataset.reason));
  // A page restored from the back/forward cache shows what it held when it was left: ask the
  // server what holds now. (With no-store the browser reloads on Back instead, and start()
  // asks it; a navigation of type back_forward is covered either way.)
  window.addEventListener("pageshow", (event) => {
    const navigation = performance.getEntriesByType("navigation")[0];
    if (event.persisted || (navigation?.type === "back_forward" && filmstrip !== null)) recheck();
  });
  $("ws-masks").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-mask]");
    if (!button) return;
    const id = button.dataset.mask;
    if (button.dataset.action === "delete") deleteMask(id);
    else if (button.dataset.action === "edit") startEditing(id);
    // Selecting is idempotent: a second click on the selected mask keeps it selected (Delete
    // and the correction act on it); Esc clears the selection.
    else state.selected = id;
    render();
  });
  $("ws-masks").addEventListener("change", (e) => {
    const select = e.target.closest("select[data-action=kind]");
    if (select) changeKind(select.dataset.mask, select.value);
  });
  renderHelp($("ws-shortcuts"));
}

async function start() {
  wire();
  let data;
  try {
    data = await api(base);
  } catch (error) {
    fail(error);
    $("ws-where").textContent = "The railcar could not be loaded.";
    return;
  }
  state.frames = frameList(data.layers);
  for (const exclusion of data.exclusions) state.exclusions.set(exclusion.frame, exclusion);
  state.masks = data.masks;
  filmstrip = new Filmstrip($("ws-strip"), { frames: state.frames, imageUrl: urls.image, onPick: showFrame });
  filmstrip.mount();
  if (!showServerState(data)) return;
  startLease(data.seconds_left);
  const until = new Date(data.expires_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  $("ws-timer").parentElement.title += `. The lease on it runs until ${until}.`;
  timer = new ActiveTimer(root.dataset.key, (s) => { $("ws-timer").textContent = clock(s); });
  if (!state.frames.length) {
    $("ws-where").textContent = "This railcar has no eligible frames to show.";
    updateRateable();
    return;
  }
  await showFrame(0);
}

start();
