// The right-hand panel and the header line, redrawn from the workspace state after each change.

const $ = (id) => document.getElementById(id);

function maskItem(mask, n, selected, kinds, editing) {
  const item = document.createElement("li");
  const pick = document.createElement("button");
  pick.type = "button";
  pick.className = "ws-mask";
  pick.dataset.mask = mask.id;
  pick.setAttribute("aria-pressed", String(selected));
  pick.innerHTML = `<span class="ws-swatch"></span><span></span><span class="ws-area"></span>`;
  pick.children[1].textContent = `Mask ${n}`;
  pick.children[2].textContent = `${mask.area.toLocaleString()} px`;
  // The inclusion kind (policy list), changed in place.
  const kind = document.createElement("select");
  kind.className = "ws-kind";
  kind.dataset.mask = mask.id;
  kind.dataset.action = "kind";
  kind.setAttribute("aria-label", `Kind of mask ${n}`);
  for (const [value, label] of kinds) kind.add(new Option(label, value, false, value === mask.kind));
  const edit = document.createElement("button");
  edit.type = "button";
  edit.className = "ws-edit";
  edit.dataset.mask = mask.id;
  edit.dataset.action = "edit";
  edit.title = `Correct mask ${n}: add or subtract clicks, then Enter`;
  edit.setAttribute("aria-label", `Correct mask ${n}`);
  edit.setAttribute("aria-pressed", String(editing));
  edit.textContent = "✎";
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "ws-remove";
  remove.dataset.mask = mask.id;
  remove.dataset.action = "delete";
  remove.title = `Delete mask ${n}`;
  remove.setAttribute("aria-label", `Delete mask ${n}`);
  remove.textContent = "×";
  item.append(pick, kind, edit, remove);
  return item;
}

function proposalText(tool, excluded, editing, brush, paint) {
  if (excluded) return "Masks are off on an excluded frame.";
  if (editing && brush) {
    return `Correcting mask ${editing} with the ${paint || "brush, paused"}: ${brush.area.toLocaleString()} px; Enter keeps it, Esc drops it.`;
  }
  if (editing && !tool.busy) {
    const area = tool.proposal?.area ? ` now ${tool.proposal.area.toLocaleString()} px;` : "";
    return `Correcting mask ${editing}:${area} click to add, shift-click to subtract, Enter keeps it, Esc cancels.`;
  }
  if (tool.busy) return "Segmenting…";
  if (tool.proposal && !tool.proposal.area) return "Nothing found there: move the point or the box.";
  if (tool.proposal) {
    return `Proposed: ${tool.proposal.area.toLocaleString()} px. Enter keeps it; more clicks refine it.`;
  }
  if (!tool.empty) return "Add a point on the inclusion, or a box around it.";
  return "Click the inclusion, or drag a box around it and click inside.";
}

export function renderPanel({ state, frame, masks, tool, codeLabel, layers, kinds }) {
  const exclusion = state.exclusions.get(frame.id);
  const key = frame.pos === 0 ? " (keyframe)" : "";
  $("ws-where").textContent =
    `Layer ${frame.layerPos + 1} of ${layers} · frame ${frame.pos + 1} of ${frame.count}${key}`;

  $("ws-excluded").hidden = !exclusion;
  $("ws-exclude").hidden = Boolean(exclusion);
  $("ws-excluded-banner").hidden = !exclusion;
  if (exclusion) {
    const text = codeLabel(exclusion.code) + (exclusion.note ? `: ${exclusion.note}` : "");
    $("ws-excluded-code").textContent = text;
    $("ws-excluded-banner").textContent = `Excluded: ${text}`;
  }
  $("ws-codes").classList.toggle("armed", state.prefix === "x");
  document.querySelector(".ws-grades").classList.toggle("armed", state.prefix === "g");

  $("ws-masks").replaceChildren(
    ...masks.map((m, i) => maskItem(m, i + 1, m.id === state.selected, kinds, m.id === state.editing)),
  );
  const editing = masks.findIndex((m) => m.id === state.editing) + 1;
  $("ws-mask-count").textContent = masks.length ? String(masks.length) : "";
  $("ws-no-masks").hidden = masks.length > 0 || Boolean(exclusion);
  $("ws-masks-off").hidden = masks.length > 0 || !exclusion;
  $("ws-proposal").textContent = proposalText(tool, Boolean(exclusion), editing, state.brush, state.paint);
  for (const [id, mode] of [["ws-brush", "brush"], ["ws-eraser", "eraser"]]) {
    $(id).hidden = !editing;
    $(id).setAttribute("aria-pressed", String(state.paint === mode));
  }
  $("ws-proposal").classList.toggle("busy", tool.busy);
  const idle = state.done || state.saving;
  const nothing = Boolean(tool.proposal && !tool.proposal.area && !tool.busy);
  $("ws-accept").disabled =
    idle || Boolean(exclusion) || !(state.brush || (tool.ready && !nothing));
  $("ws-undo").disabled = idle || !tool.history.length;
  $("ws-clear").disabled = idle || (tool.empty && !state.editing);

  const excluded = state.exclusions.size;
  const total = state.frames.length;
  const n = state.masks.length;
  $("ws-summary").textContent =
    `${excluded} of ${total} frame${total === 1 ? "" : "s"} excluded · ${n} mask${n === 1 ? "" : "s"}`;
}
