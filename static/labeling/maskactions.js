// The workspace's actions on masks: accept a proposal as a new mask or as the correction of an
// accepted one, correct a mask (its prompts back in the tool, more clicks, Enter), change its
// inclusion kind, delete it. Each is saved at once, through the workspace's one-at-a-time queue.
// A correction may also be painted: the brush adds pixels, the eraser takes them away.

import { api } from "./api.js";
import { MaskBrush } from "./brush.js";

const BRUSH_COLOUR = [56, 189, 248, 150];

export function maskActions({ state, tool, urls, overlays, saving, flash, current, viewer }) {
  const accept = () => saving(async () => {
    const frameId = tool.frameId;
    if (state.editing && state.brush) {
      await savePainted(frameId);
      return;
    }
    if (!tool.ready) {
      flash("Add a point on the inclusion, or a box, first.");
      return;
    }
    const proposal = await tool.settled();
    if (!proposal || tool.frameId !== frameId) return;
    if (!proposal.area) {
      flash("The proposal is empty: move the point or the box.");
      return;
    }
    const { rle, prompts, engine } = proposal;
    if (state.editing) {
      // A correction replaces the accepted mask's pixels (and keeps its kind).
      const id = state.editing;
      const mask = await api(urls.mask(id), { method: "PATCH", body: { rle, prompts, engine } });
      replaceMask(mask);
      state.editing = null;
      state.selected = mask.id;
      tool.reset(frameId);
      flash(`Mask corrected (${mask.area.toLocaleString()} px)`);
      return;
    }
    const body = { rle, prompts, engine, kind: state.kind };
    const mask = await api(urls.masks(frameId), { method: "POST", body });
    state.masks.push(mask);
    state.selected = mask.id;
    tool.reset(frameId);
    flash(`Mask saved (${mask.area.toLocaleString()} px, ${mask.kind})`);
  });

  function replaceMask(mask) {
    state.masks = state.masks.map((m) => (m.id === mask.id ? mask : m));
    overlays.delete(mask.id);
  }

  // Correct an accepted mask: its own prompts come back into the tool, and more clicks (add, or
  // shift-click to subtract) refine it; Enter replaces the mask, Esc leaves it as it was.
  function startEditing(id) {
    const mask = state.masks.find((m) => m.id === id);
    if (!mask || state.done) return;
    if (state.editing === id) {
      stopEditing();
      return;
    }
    state.selected = id;
    state.editing = id;
    tool.reset(current().id);
    tool.edit((p) => Object.assign(p, structuredClone(mask.prompts)));
    tool.history = [];
  }

  function stopEditing() {
    state.editing = null;
    state.brush = null;
    setPaint(null);
    tool.reset(current().id);
  }

  // The brush or the eraser (or neither: clicks are prompts again), on the mask being corrected.
  function setPaint(mode) {
    state.paint = state.editing && mode !== state.paint ? mode : null;
    viewer.setPaint(state.paint);
  }

  // Paint at a frame point: the first stroke starts from what is shown (the proposal of added
  // clicks, or the accepted mask), with the prompts that made it.
  function paintAt(point, start) {
    const mask = state.masks.find((m) => m.id === state.editing);
    if (!mask || !state.paint) return;
    if (!state.brush) {
      const fresh = tool.proposal?.area ? tool.proposal : null;
      state.brush = new MaskBrush(fresh ? fresh.rle : mask.rle, BRUSH_COLOUR);
      state.brushPrompts = fresh ? fresh.prompts : mask.prompts;
      tool.reset(current().id);
    }
    const radius = Math.max(2, Math.min(state.brush.width, state.brush.height) / 60);
    // Pointer events come far apart on a fast stroke: discs every half radius along the way.
    const from = start || !state.lastPaint ? point : state.lastPaint;
    const steps = Math.max(1, Math.ceil(Math.hypot(point[0] - from[0], point[1] - from[1]) / (radius / 2)));
    for (let i = 1; i <= steps; i += 1) {
      const t = i / steps;
      const at = [from[0] + (point[0] - from[0]) * t, from[1] + (point[1] - from[1]) * t];
      state.brush.paint(at, state.paint === "brush", radius);
    }
    state.lastPaint = point;
  }

  async function savePainted(frameId) {
    const { brush } = state;
    if (!brush.area) {
      flash("The painted mask is empty: paint some of it back, or delete the mask.");
      return;
    }
    const body = { rle: brush.rle(), prompts: state.brushPrompts, engine: "brush" };
    const mask = await api(urls.mask(state.editing), { method: "PATCH", body });
    replaceMask(mask);
    stopEditing();
    state.selected = mask.id;
    tool.reset(frameId);
    flash(`Mask corrected (${mask.area.toLocaleString()} px)`);
  }

  const changeKind = (id, kind) => saving(async () => {
    const mask = await api(urls.mask(id), { method: "PATCH", body: { kind } });
    replaceMask(mask);
    state.kind = kind; // the next mask starts with the kind chosen last
    flash(`Mask is ${kind}`);
  });

  const deleteMask = (id = state.selected) => {
    if (!id) {
      flash("Select a mask in the list first.");
      return;
    }
    return saving(async () => {
      await api(urls.mask(id), { method: "DELETE" });
      state.masks = state.masks.filter((m) => m.id !== id);
      overlays.delete(id);
      if (state.selected === id) state.selected = null;
      if (state.editing === id) stopEditing();
      flash("Mask deleted");
    });
  };

  return { accept, deleteMask, startEditing, stopEditing, changeKind, setPaint, paintAt };
}
