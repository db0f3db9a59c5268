// Draws the per-check rejection shares as lines in an SVG; no library, no build step. The
// colours come with the data, from the palette of the server-drawn charts (scrapannot/charts.py).
const NS = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function draw(svg, legend, data) {
  const width = svg.clientWidth || 900, height = svg.clientHeight || 260;
  const pad = { left: 44, right: 12, top: 10, bottom: 26 };
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const n = data.days.length;
  const shares = Object.values(data.share).flat().filter((v) => v !== null);
  const top = Math.max(0.05, ...shares);
  const x = (i) => pad.left + (n <= 1 ? 0 : (i * (width - pad.left - pad.right)) / (n - 1));
  const y = (v) => height - pad.bottom - (v / top) * (height - pad.top - pad.bottom);
  svg.append(el("line", { class: "axis", x1: pad.left, y1: y(0), x2: width - pad.right, y2: y(0) }));
  for (const f of [0, 0.5, 1]) {
    svg.append(el("text", { x: 4, y: y(top * f) + 4 }, `${Math.round(top * f * 100)}%`));
  }
  [[0, "start"], [Math.floor((n - 1) / 2), "middle"], [n - 1, "end"]].forEach(([i, anchor]) => {
    svg.append(el("text", { x: x(i), y: height - 6, "text-anchor": anchor }, data.days[i]));
  });
  for (const [check, values] of Object.entries(data.share)) {
    if (!values.some((v) => v)) continue;
    let path = "";
    values.forEach((v, i) => {
      if (v === null) return;
      path += `${path ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    svg.append(el("path", { d: path, fill: "none", stroke: data.colors[check] || "#333", "stroke-width": 2 }));
    const item = document.createElement("span");
    item.style.setProperty("--swatch", data.colors[check] || "#333");
    item.textContent = check;
    legend.append(item);
  }
  if (!legend.childElementCount) legend.textContent = "No failed checks in this period.";
}

const pair = document.getElementById("camera-pair");
pair.addEventListener("change", () => {
  const [line, camera] = pair.value ? pair.value.split("|") : ["", ""];
  pair.form.elements.line.value = line;
  pair.form.elements.camera.value = camera;
});
draw(
  document.getElementById("rejection-chart"),
  document.getElementById("rejection-legend"),
  JSON.parse(document.getElementById("rejection-data").textContent),
);
