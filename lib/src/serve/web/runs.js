// The research cockpit of mnist-serve: every run under the --run folders (a sortable, filterable
// table with config columns of the user's choice), one run's page (curves drawn here from its
// history, the confusion matrix whose cells open their test images, per-class scores, the most
// confident mistakes, live progress while it trains) and runs compared (curves overlaid, metrics
// side by side, the config keys that differ). Views are addressed by the hash: #, #run=NAME,
// #compare=A,B. No framework; the server's Content-Security-Policy allows only files of its own.

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"];
const PER_PAGE = 48;

const state = {
  runs: [],             // /api/runs
  sort: { key: "start_time", desc: true },
  columns: JSON.parse(localStorage.getItem("mnist-runs-columns") || '["optim.lr","train.batch_size"]'),
  selected: new Set(),
  timer: 0,             // the refresh of the current view
  run: null,            // the run on its page
  cell: null,           // {t, p, page} of the open confusion cell
  wrongPage: 1,
};

async function call(path) {
  const res = await fetch(path);
  let body = null;
  try {
    body = await res.json();
  } catch {
    throw new Error(`${path}: the server answered ${res.status} without JSON`);
  }
  if (!res.ok) {
    const e = new Error(body.error || `HTTP ${res.status}`);
    e.status = res.status;
    e.body = body;
    throw e;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(2)}%`);
const num = (v) => (v === null || v === undefined ? "–" : Number(v).toPrecision(4));
function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
const runUrl = (name) => `/api/runs/${encodeURIComponent(name)}`;
// A run file's address: "plots/a b.png" -> ".../files/plots/a%20b.png".
const fileUrl = (base, f) => `${base}/files/${f.split("/").map(encodeURIComponent).join("/")}`;
function showError(e) {
  $("error").textContent = e ? (e.message || String(e)) : "";
}

// ---- the runs table ------------------------------------------------------------------------

const FIXED = [
  { key: "name", label: "run" },
  { key: "status", label: "status" },
  { key: "config_name", label: "config" },
  { key: "model", label: "model" },
  { key: "dataset", label: "data" },
  { key: "epochs_done", label: "epochs" },
  { key: "best_val_accuracy", label: "best val" },
  { key: "test_accuracy", label: "test acc." },
  { key: "wall_seconds", label: "wall time" },
  { key: "start_time", label: "started" },
];

function cellValue(run, key) {
  return key.startsWith("config:") ? run.config[key.slice(7)] : run[key];
}

async function loadRuns() {
  const all = [];
  for (let offset = 0; ; ) {
    const page = await call(`/api/runs?offset=${offset}&limit=200`);
    all.push(...page.runs);
    offset += page.runs.length;
    if (page.runs.length === 0 || offset >= page.total) break;
  }
  state.runs = all;
  const keys = new Set();
  for (const r of all) for (const k of Object.keys(r.config || {})) keys.add(k);
  const add = $("add-column");
  const chosen = add.value;
  add.replaceChildren(el("option", { value: "" }, "add…"));
  for (const k of [...keys].sort()) {
    if (!state.columns.includes(k)) add.append(el("option", { value: k }, k));
  }
  add.value = chosen;
}

function renderRuns() {
  const head = $("runs-head");
  head.replaceChildren(el("th", { scope: "col" }, el("span", { class: "sr" }, "select")));
  const columns = [...FIXED, ...state.columns.map((k) => ({ key: `config:${k}`, label: k, config: true }))];
  for (const c of columns) {
    const arrow = state.sort.key === c.key ? (state.sort.desc ? " ▾" : " ▴") : "";
    const button = el("button", { type: "button", class: "sort", "data-key": c.key }, c.label + arrow);
    button.addEventListener("click", () => {
      state.sort = { key: c.key, desc: state.sort.key === c.key ? !state.sort.desc : false };
      renderRuns();
    });
    const th = el("th", { scope: "col" }, button);
    if (c.config) {
      th.append(el("button", { type: "button", class: "remove", title: `remove ${c.label}`,
        onclick: () => {
          state.columns = state.columns.filter((k) => k !== c.label);
          localStorage.setItem("mnist-runs-columns", JSON.stringify(state.columns));
          loadRuns().then(renderRuns);
        } }, "×"));
    }
    head.append(th);
  }
  const words = $("filter").value.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = state.runs.filter((r) => {
    const text = [r.name, r.status, r.model, r.dataset, r.description,
      ...Object.entries(r.config || {}).map(([k, v]) => `${k}=${v}`)].join(" ").toLowerCase();
    return words.every((w) => text.includes(w));
  });
  const { key, desc } = state.sort;
  shown.sort((a, b) => {
    const x = cellValue(a, key), y = cellValue(b, key);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return desc ? -order : order;
  });
  const body = $("runs-body");
  body.replaceChildren();
  for (const r of shown) {
    const box = el("input", { type: "checkbox", "aria-label": `select ${r.name}` });
    box.checked = state.selected.has(r.name);
    box.addEventListener("change", () => {
      if (box.checked) state.selected.add(r.name); else state.selected.delete(r.name);
      $("compare-selected").disabled = state.selected.size < 2;
    });
    const epochs = `${r.epochs_done} / ${r.epochs_planned}`;
    const tr = el("tr", { "data-name": r.name },
      el("td", {}, box),
      el("td", {}, el("a", { href: `#run=${encodeURIComponent(r.name)}` }, r.name)),
      el("td", {}, el("span", { class: `status ${r.status}`, title: r.problem || "" }, r.status)),
      el("td", {}, r.config_name || "–"),
      el("td", {}, r.model || "–"), el("td", {}, r.dataset || "–"), el("td", { class: "n" }, epochs),
      el("td", { class: "n" }, pct(r.best_val_accuracy)), el("td", { class: "n" }, pct(r.test_accuracy)),
      el("td", { class: "n" }, duration(r.wall_seconds)),
      el("td", {}, (r.start_time || "–").replace("T", " ").replace("Z", "")));
    for (const k of state.columns) {
      const v = r.config ? r.config[k] : undefined;
      tr.append(el("td", { class: "n" }, v === undefined ? "–" : typeof v === "object" ? JSON.stringify(v) : String(v)));
    }
    body.append(tr);
  }
  $("runs-note").textContent = `${shown.length} of ${state.runs.length} runs` +
    (state.runs.some((r) => r.status === "running") ? " · refreshing while runs train" : "");
  $("compare-selected").disabled = state.selected.size < 2;
}

async function showList() {
  $("crumb").textContent = "";
  await loadRuns();
  renderRuns();
  const again = state.runs.some((r) => r.status === "running") ? 2000 : 5000;
  state.timer = setTimeout(() => route(), again);
}

// ---- charts --------------------------------------------------------------------------------

function tickText(v) {
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

// A line chart of `series` [{name, colour, points: [[x, y], ...]}] with axes, ticks and a hover
// read-out of every series at the nearest x.
function chart(title, series, { log = false, percent = false } = {}) {
  const W = 440, H = 240, L = 56, R = 12, T = 26, B = 32;
  const figure = el("figure", { class: "chart" });
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  figure.append(root);
  const pts = series.flatMap((s) => s.points).filter(([, y]) => y !== null && (!log || y > 0));
  root.append(Object.assign(svg("text", { x: L, y: 16, class: "title" }), { textContent: title + (log ? " (log)" : "") }));
  if (pts.length === 0) {
    root.append(Object.assign(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "tick" }), { textContent: "no values yet" }));
    return figure;
  }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  let x0 = Math.min(...xs), x1 = Math.max(...xs);
  if (x0 === x1) { x0 -= 0.5; x1 += 0.5; }
  const f = log ? Math.log10 : (v) => v;
  let y0 = f(Math.min(...ys)), y1 = f(Math.max(...ys));
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad;
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - (f(y) - y0) / (y1 - y0)) * (H - T - B);
  root.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  root.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" }));
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4;
    const v = log ? 10 ** yv : yv;
    const y = T + (1 - i / 4) * (H - T - B);
    root.append(svg("line", { x1: L, y1: y, x2: W - R, y2: y, class: "grid" }));
    root.append(Object.assign(svg("text", { x: L - 4, y: y + 4, "text-anchor": "end", class: "tick" }),
      { textContent: percent ? `${(100 * v).toFixed(1)}%` : tickText(v) }));
  }
  const xticks = [...new Set(xs)].sort((a, b) => a - b);
  const every = Math.max(1, Math.ceil(xticks.length / 8));
  xticks.forEach((x, i) => {
    if (i % every) return;
    root.append(Object.assign(svg("text", { x: X(x), y: H - B + 14, "text-anchor": "middle", class: "tick" }), { textContent: x }));
  });
  root.append(Object.assign(svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", class: "tick" }), { textContent: "epoch" }));
  series.forEach((s) => {
    const ok = s.points.filter(([, y]) => y !== null && (!log || y > 0));
    if (ok.length === 0) return;
    const line = svg("polyline", { points: ok.map(([x, y]) => `${X(x)},${Y(y)}`).join(" "), stroke: s.colour, class: "line" });
    if (s.dashed) line.setAttribute("stroke-dasharray", "5 3");
    root.append(line);
    for (const [x, y] of ok) root.append(svg("circle", { cx: X(x), cy: Y(y), r: 2.5, fill: s.colour }));
  });
  const legend = el("figcaption", { class: "legend" });
  for (const s of series) {
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = s.colour;
    legend.append(el("span", {}, swatch, s.name));
  }
  figure.append(legend);
  // Hover: a rule at the nearest epoch and every series' value there.
  const rule = svg("line", { y1: T, y2: H - B, class: "rule", visibility: "hidden" });
  const tip = el("div", { class: "tip", hidden: "" });
  root.append(rule);
  figure.append(tip);
  const hit = svg("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "transparent", class: "hit" });
  root.append(hit);
  const move = (ev) => {
    const box = root.getBoundingClientRect();
    const px = ((ev.clientX - box.left) / box.width) * W;
    const x = xticks.reduce((best, v) => (Math.abs(X(v) - px) < Math.abs(X(best) - px) ? v : best), xticks[0]);
    rule.setAttribute("x1", X(x)); rule.setAttribute("x2", X(x)); rule.setAttribute("visibility", "visible");
    const lines = [`epoch ${x}`];
    for (const s of series) {
      const p = s.points.find(([px2]) => px2 === x);
      if (p && p[1] !== null) lines.push(`${s.name}: ${percent ? pct(p[1]) : num(p[1])}`);
    }
    tip.textContent = lines.join("\n");
    tip.hidden = false;
    tip.style.left = `${Math.min(70, (X(x) / W) * 100)}%`;
  };
  hit.addEventListener("pointermove", move);
  hit.addEventListener("pointerleave", () => { rule.setAttribute("visibility", "hidden"); tip.hidden = true; });
  return figure;
}

// The charts of histories [{name, history}], one per quantity, each run a colour (one run: the
// train and validation series of a quantity in their own colours).
function historyCharts(runs, log) {
  const out = [];
  const column = (h, name) => {
    const i = h.columns.indexOf(name), e = h.columns.indexOf("epoch");
    return i < 0 ? [] : h.rows.map((row) => [row[e], row[i]]);
  };
  const groups = [
    { title: "loss", cols: ["train_loss", "val_loss"], log },
    { title: "accuracy", cols: ["train_accuracy", "val_accuracy"], percent: true },
    { title: "learning rate", cols: ["lr"], log: true },
    { title: "images per second", cols: ["images_per_second"] },
    { title: "seconds per epoch", cols: ["seconds"] },
  ];
  const known = new Set(groups.flatMap((g) => g.cols).concat(["epoch"]));
  for (const r of runs) for (const c of r.history.columns) if (!known.has(c)) { known.add(c); groups.push({ title: c, cols: [c] }); }
  for (const g of groups) {
    const series = [];
    runs.forEach((r, ri) => {
      g.cols.forEach((c, ci) => {
        const points = column(r.history, c);
        if (points.length === 0 || points.every(([, y]) => y === null)) return;
        const colour = runs.length === 1 ? COLOURS[ci] : COLOURS[ri % COLOURS.length];
        series.push({ name: runs.length === 1 ? c : `${r.name} ${c.replace("_" + g.title, "")}`, colour, points, dashed: ci > 0 });
      });
    });
    if (series.length) out.push(chart(g.title, series, { log: g.log, percent: g.percent }));
  }
  return out;
}

// ---- one run -------------------------------------------------------------------------------

function fact(label, value) {
  return el("div", { class: "fact" }, el("span", { class: "muted" }, label), el("strong", {}, value));
}

function renderFacts(r) {
  const facts = [fact("status", r.status), fact("config", r.config_name || "–"), fact("model", r.model || "–"), fact("data", r.dataset || "–"),
    fact("epochs", `${r.epochs_done} / ${r.epochs_planned}`), fact("best val", pct(r.best_val_accuracy)),
    fact("test accuracy", pct(r.test_accuracy)), fact("wall time", duration(r.wall_seconds)),
    fact("started", (r.start_time || "–").replace("T", " ").replace("Z", ""))];
  $("run-facts").replaceChildren(...facts);
  if (r.problem) $("run-facts").append(el("p", { class: "error" }, r.problem));
  if (r.status === "interrupted") {
    $("run-facts").append(el("p", { class: "muted" }, "stopped with a checkpoint: mnist-train --resume RUN_FOLDER continues it"));
  }
}

function renderLive(r) {
  const live = $("live");
  const p = r.progress;
  if (r.status !== "running" || !p) { live.hidden = true; return; }
  live.hidden = false;
  const eta = p.eta_seconds === null || p.eta_seconds === undefined ? "–" : duration(p.eta_seconds);
  const frac = p.steps ? ((p.epoch - 1) + p.step / p.steps) / Math.max(1, p.epochs) : 0;
  const bar = el("div", { class: "progress" }, el("div", { class: "fill" }));
  bar.firstChild.style.width = `${(100 * Math.min(1, frac)).toFixed(1)}%`;
  live.replaceChildren(el("strong", {}, p.state === "training" ? "training" : `training done · ${p.state}`), bar,
    el("span", { id: "live-text" },
      `epoch ${p.epoch} / ${p.epochs}, step ${p.step} / ${p.steps} · loss ${num(p.loss)} · ` +
      `${p.images_per_second ? Math.round(p.images_per_second).toLocaleString() : "–"} images/s · ETA ${eta}`));
}

function renderCharts() {
  const r = state.run;
  $("charts").replaceChildren(...historyCharts([{ name: r.name, history: r.history }], $("log-loss").checked));
}

function heat(v, max) {
  const a = max > 0 ? Math.sqrt(v / max) : 0;
  return `rgba(37, 99, 235, ${a.toFixed(3)})`;
}

function renderConfusion(r) {
  const m = r.metrics.confusion_matrix, names = r.metrics.class_names;
  const table = $("confusion");
  table.replaceChildren();
  const head = el("tr", {}, el("th", { scope: "col" }, "true ↓ / predicted →"));
  names.forEach((n) => head.append(el("th", { scope: "col" }, n)));
  table.append(el("thead", {}, head));
  const body = el("tbody");
  const off = Math.max(1, ...m.flatMap((row, i) => row.filter((_, j) => j !== i)));
  const diag = Math.max(1, ...m.map((row, i) => row[i]));
  m.forEach((row, t) => {
    const tr = el("tr", {}, el("th", { scope: "row" }, names[t]));
    row.forEach((v, p) => {
      const b = el("button", { type: "button", class: "cm", "data-t": t, "data-p": p,
        title: `true ${names[t]}, predicted ${names[p]}: ${v}` }, v);
      b.style.background = t === p ? `rgba(22, 163, 74, ${(0.15 + 0.6 * v / diag).toFixed(3)})` : heat(v, off);
      if (t !== p && v / off > 0.5) b.style.color = "#fff";
      b.disabled = v === 0;
      b.addEventListener("click", () => { state.cell = { t, p, page: 1 }; loadCell(); });
      tr.append(el("td", {}, b));
    });
    body.append(tr);
  });
  table.append(body);
}

function thumbs(container, items, names) {
  container.replaceChildren(...items.map((it) => el("figure", { class: "thumb" },
    el("img", { src: it.image, alt: `test image ${it.index}`, width: 56, height: 56, loading: "lazy" }),
    el("figcaption", {}, `#${it.index} · ${names[it.label]}→${names[it.predicted]} ${(100 * it.confidence).toFixed(0)}%`))));
}

async function loadCell() {
  const r = state.run, c = state.cell, names = r.metrics.class_names;
  const page = await call(`${runUrl(r.name)}/confusion/${c.t}/${c.p}?page=${c.page}&per_page=${PER_PAGE}`);
  $("cell").hidden = false;
  $("cell-title").textContent = `true ${names[c.t]}, predicted ${names[c.p]}: ${page.total} test images`;
  thumbs($("cell-images"), page.items, names);
  $("cell-page").textContent = `page ${page.page} of ${Math.max(1, page.pages)}`;
  $("cell-prev").disabled = page.page <= 1;
  $("cell-next").disabled = page.page >= page.pages;
}

async function loadWrong() {
  const r = state.run, names = r.metrics.class_names;
  const page = await call(`${runUrl(r.name)}/misclassified?page=${state.wrongPage}&per_page=${PER_PAGE}`);
  thumbs($("wrong-images"), page.items, names);
  $("wrong-page").textContent = `page ${page.page} of ${Math.max(1, page.pages)} (${page.total} mistakes)`;
  $("wrong-prev").disabled = page.page <= 1;
  $("wrong-next").disabled = page.page >= page.pages;
}

function renderPerClass(r) {
  const t = $("per-class");
  t.replaceChildren(el("thead", {}, el("tr", {}, ...["class", "precision", "recall", "F1", "support"].map((h) => el("th", { scope: "col" }, h)))));
  const body = el("tbody");
  for (const c of r.metrics.per_class || []) {
    body.append(el("tr", {}, el("td", {}, c.name), el("td", { class: "n" }, pct(c.precision)),
      el("td", { class: "n" }, pct(c.recall)), el("td", { class: "n" }, pct(c.f1)), el("td", { class: "n" }, c.support)));
  }
  body.append(el("tr", { class: "total" }, el("td", {}, "macro"), el("td", { class: "n" }, pct(r.metrics.macro_precision)),
    el("td", { class: "n" }, pct(r.metrics.macro_recall)), el("td", { class: "n" }, pct(r.metrics.macro_f1)),
    el("td", { class: "n" }, r.metrics.num_samples)));
  t.append(body);
}

async function showRun(name) {
  const r = await call(runUrl(name));
  state.run = r;
  $("crumb").textContent = `› ${r.name}`;
  document.title = `mnist-cpp: ${r.name}`;
  $("run-desc").textContent = (r.config && r.config.description) || "";
  renderFacts(r);
  renderLive(r);
  renderCharts();
  const done = r.status === "complete" && r.metrics;
  $("finished").hidden = !done;
  if (done) {
    renderConfusion(r);
    renderPerClass(r);
    state.wrongPage = 1;
    $("cell").hidden = true;
    await loadWrong();
    const samples = r.files.find((f) => f === "plots/samples.png");
    if (samples) $("samples").src = fileUrl(r.base, samples);
    $("samples").hidden = !samples;
  }
  $("files").replaceChildren(...r.files.map((f) => el("li", {}, el("a", { href: fileUrl(r.base, f) }, f))));
  $("config").textContent = JSON.stringify(r.config, null, 2);
  if (r.status === "running") follow(r.name);
}

// Live: the run's events every second, new history rows appended, until it is no longer running.
function follow(name) {
  state.timer = setTimeout(async () => {
    try {
      const r = state.run;
      const last = r.history.rows.length ? r.history.rows[r.history.rows.length - 1][0] : 0;
      const ev = await call(`${runUrl(name)}/events?after=${last}`);
      if (state.run !== r) return;
      if (ev.history.columns.length) r.history.columns = ev.history.columns;
      r.history.rows.push(...ev.history.rows);
      Object.assign(r, { status: ev.status, progress: ev.progress, epochs_done: ev.epochs_done,
        best_val_accuracy: ev.best_val_accuracy, wall_seconds: ev.wall_seconds, test_accuracy: ev.test_accuracy });
      renderFacts(r);
      renderLive(r);
      if (ev.history.rows.length) renderCharts();
      if (ev.status === "running") follow(name);
      else await showRun(name);  // finished: the confusion matrix and the rest appear
      showError(null);
    } catch (e) {
      showError(e);
      follow(name);
    }
  }, 1000);
}

// ---- compare -------------------------------------------------------------------------------

function flatten(obj, prefix = "", out = {}) {
  for (const [k, v] of Object.entries(obj || {})) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out[key] = JSON.stringify(v);
  }
  return out;
}

async function showCompare(names) {
  const runs = await Promise.all(names.map((n) => call(runUrl(n))));
  $("crumb").textContent = `› compare ${runs.map((r) => r.name).join(", ")}`;
  $("compare-charts").replaceChildren(...historyCharts(runs.map((r) => ({ name: r.name, history: r.history })), true));
  const rows = [["status", (r) => r.status], ["model", (r) => r.model], ["data", (r) => r.dataset],
    ["epochs", (r) => `${r.epochs_done} / ${r.epochs_planned}`], ["best val", (r) => pct(r.best_val_accuracy)],
    ["test accuracy", (r) => pct(r.test_accuracy)], ["test loss", (r) => num(r.metrics && r.metrics.test_loss)],
    ["macro F1", (r) => pct(r.metrics && r.metrics.macro_f1)], ["wall time", (r) => duration(r.wall_seconds)]];
  const head = el("tr", {}, el("th", { scope: "col" }, ""), ...runs.map((r, i) => {
    const th = el("th", { scope: "col" }, el("a", { href: `#run=${encodeURIComponent(r.name)}` }, r.name));
    th.style.color = COLOURS[i % COLOURS.length];
    return th;
  }));
  $("compare-metrics").replaceChildren(el("thead", {}, head),
    el("tbody", {}, ...rows.map(([label, f]) => el("tr", {}, el("th", { scope: "row" }, label), ...runs.map((r) => el("td", { class: "n" }, f(r)))))));
  const flat = runs.map((r) => flatten(r.config));
  const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort()
    .filter((k) => k !== "description" && new Set(flat.map((f) => f[k])).size > 1);
  const diffHead = el("tr", {}, el("th", { scope: "col" }, "key"), ...runs.map((r) => el("th", { scope: "col" }, r.name)));
  $("config-diff").replaceChildren(el("thead", {}, diffHead), el("tbody", {}, ...(keys.length
    ? keys.map((k) => el("tr", {}, el("th", { scope: "row" }, k), ...flat.map((f) => el("td", {}, f[k] === undefined ? "(absent)" : f[k]))))
    : [el("tr", {}, el("td", { colspan: runs.length + 1 }, "the configs are the same"))])));
}

// ---- views ---------------------------------------------------------------------------------

async function route() {
  clearTimeout(state.timer);
  const hash = new URLSearchParams(location.hash.slice(1));
  const view = hash.has("run") ? "run" : hash.has("compare") ? "compare" : "list";
  $("list-view").hidden = view !== "list";
  $("run-view").hidden = view !== "run";
  $("compare-view").hidden = view !== "compare";
  if (view !== "run") state.run = null;
  try {
    if (view === "run") await showRun(hash.get("run"));
    else if (view === "compare") await showCompare(hash.get("compare").split(",").filter(Boolean));
    else { document.title = "mnist-cpp: runs"; await showList(); }
    showError(null);
  } catch (e) {
    showError(e);
  }
}

$("filter").addEventListener("input", renderRuns);
$("add-column").addEventListener("change", () => {
  const k = $("add-column").value;
  if (k && !state.columns.includes(k)) state.columns.push(k);
  localStorage.setItem("mnist-runs-columns", JSON.stringify(state.columns));
  $("add-column").value = "";
  loadRuns().then(renderRuns);
});
$("compare-selected").addEventListener("click", () => {
  location.hash = `compare=${[...state.selected].map(encodeURIComponent).join(",")}`;
});
$("log-loss").addEventListener("change", renderCharts);
$("cell-prev").addEventListener("click", () => { state.cell.page--; loadCell().catch(showError); });
$("cell-next").addEventListener("click", () => { state.cell.page++; loadCell().catch(showError); });
$("wrong-prev").addEventListener("click", () => { state.wrongPage--; loadWrong().catch(showError); });
$("wrong-next").addEventListener("click", () => { state.wrongPage++; loadWrong().catch(showError); });
window.addEventListener("hashchange", route);
route();
