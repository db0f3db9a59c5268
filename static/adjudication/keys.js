// The case page's keyboard. As in the annotators' workspace, one table serves both the key
// handling and the help overlay, so the help can never list a key that does nothing. Two keys
// take a second key: g (grade) and r (rationale), within PREFIX_MS.

import { isTyping } from "../labeling/canvas.js";
import { renderHelp as renderTable } from "../labeling/shortcuts.js";

const PREFIX_MS = 2500;

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

// `act(name, arg)` runs an action; `onPrefix(name | null)` shows a pending g or r; while
// `paused()` (a dialog is open) only ? works, and the dialog keeps Enter, Esc and Tab.
export function bindKeys({ act, onPrefix, paused }) {
  let prefix = null;
  let timer = null;
  const setPrefix = (name) => {
    prefix = name;
    clearTimeout(timer);
    if (name) timer = setTimeout(() => setPrefix(null), PREFIX_MS);
    onPrefix(name);
  };
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
      const name = prefix;
      setPrefix(null);
      return run(e, name === "g" ? "grade" : "rationale", Number(e.key));
    }
    if (prefix) setPrefix(null);
    if (/^[1-9]$/.test(e.key)) return run(e, "toggleRater", Number(e.key));
    if (e.key === "g" || e.key === "r") {
      e.preventDefault();
      return setPrefix(e.key);
    }
    if (KEYS[e.key]) run(e, KEYS[e.key]);
  });
}
