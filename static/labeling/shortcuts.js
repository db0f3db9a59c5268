// The workspace's keyboard: one table serves both the key handling and the help overlay, so the
// help can never list a key that does nothing. Two keys take a second key: x (failure code) and
// g (grade); the second key must follow within PREFIX_MS.

import { isTyping } from "./canvas.js";

const PREFIX_MS = 2500;

// [group, keys as shown, what it does]
export const HELP = [
  ["Masks", "Click", "point on the inclusion"],
  ["Masks", "Shift-click · Alt-click · right click", "point on the background"],
  ["Masks", "Drag", "box around the inclusion"],
  ["Masks", "Enter", "accept the proposed mask"],
  ["Masks", "z · Backspace", "undo the last point or box"],
  ["Masks", "Esc", "clear the points and box"],
  ["Masks", "Delete", "delete the selected mask"],
  ["Masks", "✎ then clicks · Brush · Eraser", "correct an accepted mask; Enter keeps it, Esc drops it"],
  ["Frames", "n · →", "next frame"],
  ["Frames", "p · ←", "previous frame"],
  ["Frames", "↓ · ↑", "next / previous layer"],
  ["Frames", "x then 1–8", "exclude the frame with a failure code; on an excluded frame, x includes it again"],
  ["View", "+ · − · wheel", "zoom in / out"],
  ["View", "0", "fit the frame"],
  ["View", "Space-drag · middle drag", "pan"],
  ["Rating", "c", "type the contamination %"],
  ["Rating", "g then 1–4", "choose the grade"],
  ["Rating", "Ctrl-Enter", "submit the rating"],
  ["Help", "?", "show or hide these shortcuts"],
  ["Help", "i", "show or hide the rating guidelines"],
];

// `table` rows are [group, keys, what]; the adjudication page passes its own.
export function renderHelp(container, table = HELP) {
  const groups = new Map();
  for (const [group, keys, what] of table) {
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push([keys, what]);
  }
  for (const [group, rows] of groups) {
    const section = document.createElement("section");
    const title = document.createElement("h3");
    title.textContent = group;
    const list = document.createElement("dl");
    for (const [keys, what] of rows) {
      const dt = document.createElement("dt");
      keys.split(" · ").forEach((alternative, i) => {
        if (i) dt.append(" ");
        alternative.split(" then ").forEach((k, j) => {
          if (j) dt.append(" then ");
          const kbd = document.createElement("kbd");
          kbd.textContent = k;
          dt.append(kbd);
        });
      });
      const dd = document.createElement("dd");
      dd.textContent = what;
      list.append(dt, dd);
    }
    section.append(title, list);
    container.append(section);
  }
}

const WORKSPACE_KEYS = {
  Enter: "accept", z: "undo", Backspace: "undo", Escape: "clear", Delete: "deleteMask",
  n: "nextFrame", ArrowRight: "nextFrame", p: "previousFrame", ArrowLeft: "previousFrame",
  ArrowDown: "nextLayer", ArrowUp: "previousLayer", "+": "zoomIn", "=": "zoomIn",
  "-": "zoomOut", 0: "fit", c: "focusContamination", "?": "help", i: "guidelines",
};

// The workspace's keys: x then a digit excludes with a failure code (x on an excluded frame
// includes it again: `act("exclude")` answers whether a code is still to come), g then a digit
// grades.
export function bindShortcuts({ act, onPrefix, paused }) {
  bindKeymap({
    keys: WORKSPACE_KEYS,
    prefixes: { x: "excludeAs", g: "grade" },
    beforePrefix: { x: "exclude" },
    act,
    onPrefix,
    paused,
  });
}

// One keyboard mechanism for every page. `keys` maps a key to an action; `prefixes` maps a key
// that waits for a digit (within PREFIX_MS) to the action that takes the digit; `beforePrefix`
// runs an action when such a key is pressed, and the prefix waits only if it answers true;
// `digits` takes a bare 1-9. `act(name, arg)` runs an action; `onPrefix(name | null)` shows a
// pending prefix; while `paused()` (a dialog is open) only ? works, and the dialog keeps its keys.
export function bindKeymap({
  keys, prefixes = {}, beforePrefix = {}, digits = null, act, onPrefix, paused,
}) {
  let prefix = null;
  let timer = null;
  const setPrefix = (name) => {
    prefix = name;
    clearTimeout(timer);
    if (name) timer = setTimeout(() => setPrefix(null), PREFIX_MS);
    onPrefix(name);
  };
  // A focused button would also take Enter or Space: the shortcut wins.
  const run = (e, action, arg) => {
    e.preventDefault();
    act(action, arg);
  };

  window.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    if (paused()) {
      if (e.key === "?") run(e, "help");
      return;
    }
    const mod = e.ctrlKey || e.metaKey;
    if (mod && e.key === "Enter") return run(e, "submit");
    if (e.key === "Escape" && prefix) {
      e.preventDefault();
      return setPrefix(null);
    }
    if (isTyping(e.target)) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (mod || (e.altKey && e.key !== "Alt")) return;
    if (prefix && /^[1-9]$/.test(e.key)) {
      const action = prefixes[prefix];
      setPrefix(null);
      return run(e, action, Number(e.key));
    }
    if (prefix) setPrefix(null);
    if (digits && /^[1-9]$/.test(e.key)) return run(e, digits, Number(e.key));
    if (Object.hasOwn(prefixes, e.key)) {
      e.preventDefault();
      const before = beforePrefix[e.key];
      if (!before || act(before)) setPrefix(e.key);
      return;
    }
    if (Object.hasOwn(keys, e.key)) run(e, keys[e.key]);
  });
}
