// The workspace's actions on masks: accept a proposal as a new mask or as the correction of an
// accepted one, correct a mask (its prompts back in the tool, more clicks, Enter), change its
// inclusion kind, delete it. Each is saved at once, through the workspace's one-at-a-time queue.

import { api } from "./api.js";

export function maskActions({ state, tool, urls, overlays, saving, flash, current }) {
  const accept = () => saving(async () => {
    const frameId = tool.frameId;
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
    tool.reset(current().id);
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

  return { accept, deleteMask, startEditing, stopEditing, changeKind };
}
