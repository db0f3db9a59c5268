// The case page's keyboard. As in the annotators' workspace, one table serves both the key
// handling and the help overlay, so the help can never list a key that does nothing. Two keys
// take a second key: g (grade) and r (rationale), within a few seconds.

import { bindKeymap, renderHelp as renderTable } from "../labeling/shortcuts.js";

// [group, keys as shown, what it does]
const TABLE = [
  ["Frames", "n · →", "next frame"],
  ["Frames", "p · ←", "previous frame"],
  ["Frames", "↓ · ↑", "next / previous layer"],
  ["Raters", "1–9", "show or hide Rater A, B, C… masks"],
  ["Raters", "a", "show every rater's masks, or none"],
  ["View", "+ · − · wheel", "zoom in / out"],
  ["View", "0", "fit the frame"],
  ["View", "Space-drag · middle drag", "pan"],
  ["Decision", "c", "type the final contamination %"],
  ["Decision", "g then 1–4", "choose the grade"],
  ["Decision", "r then 1–6", "choose the rationale"],
  ["Decision", "t", "type the note"],
  ["Decision", "Ctrl-Enter · Enter in the % field", "review the decision; Enter again records it"],
  ["Cases", "j", "skip to the next open case"],
  ["Cases", "q", "back to the queue"],
  ["Help", "?", "show or hide these shortcuts"],
];

const KEYS = {
  n: "nextFrame", ArrowRight: "nextFrame", p: "previousFrame", ArrowLeft: "previousFrame",
  ArrowDown: "nextLayer", ArrowUp: "previousLayer", a: "toggleAll", "+": "zoomIn", "=": "zoomIn",
  "-": "zoomOut", 0: "fit", c: "focusContamination", t: "focusNote", j: "nextCase", q: "queue",
  "?": "help",
};

export function renderHelp(container, { decision }) {
  const rows = TABLE.filter(([group]) => decision || group !== "Decision");
  renderTable(container, rows);
}

// 1-9 toggles a rater's masks; g then a digit grades, r then a digit picks the rationale. The
// confirm dialog, while open, keeps Enter, Esc and Tab (`paused`).
export function bindKeys({ act, onPrefix, paused }) {
  bindKeymap({
    keys: KEYS,
    prefixes: { g: "grade", r: "rationale" },
    digits: "toggleRater",
    act,
    onPrefix,
    paused,
  });
}
