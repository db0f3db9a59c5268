// The operator's list: poll operate-feed and redraw the rows (no build step, no framework).
const table = document.getElementById("operate-list");
const body = table.querySelector("tbody");
const updated = document.getElementById("operate-updated");
const pollMs = Number(table.dataset.pollMs) || 2000;

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function decisionText(d) {
  if (!d) return "open";
  if (d.action !== "amend") return d.action;
  const pct = d.contamination_pct === null ? "" : `${d.contamination_pct.toFixed(1)} % `;
  return `amend: ${pct}${d.grade} (${d.rationale_code})`;
}

function row(u) {
  const tr = document.createElement("tr");
  tr.dataset.railcar = u.id;
  const first = document.createElement("td");
  const link = document.createElement("a");
  link.href = u.url;
  link.textContent = u.real_id;
  first.append(link);
  tr.append(first, cell(u.line), cell(u.started_at.slice(0, 16).replace("T", " ")));
  const e = u.estimate;
  if (e) {
    const flags = Object.entries(e.quality_flags).map(([f, n]) => `${f} ×${n}`).join(" ");
    tr.append(
      cell(`${e.contamination_pct.toFixed(1)} %`, "contamination"),
      cell(e.grade, "grade"),
      cell(e.confidence.toFixed(2), "confidence"),
      cell(flags, "flags"),
      cell(`v${e.model_version}`),
      cell(String(e.layers_scored), "layers"),
    );
  } else {
    const none = cell("no estimate yet", "muted");
    none.colSpan = 6;
    tr.append(none);
  }
  tr.append(cell(decisionText(u.decision), "decision"));
  tr.append(cell(u.escalations.map((x) => x.route).join(", ") || "none", "escalation"));
  return tr;
}

async function poll() {
  try {
    const response = await fetch(table.dataset.feed, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (response.ok) {
      const data = await response.json();
      body.replaceChildren(...data.unloadings.map(row));
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } else if (response.status === 403 || response.status === 302) {
      return; // logged out or role removed: stop polling
    }
  } catch (err) {
    updated.textContent = "Connection lost; retrying.";
  }
  setTimeout(poll, pollMs);
}

setTimeout(poll, pollMs);
