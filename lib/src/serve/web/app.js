// The drawing page of mnist-serve: a canvas for mouse, touch and pen (Pointer Events), uploads
// (file picker, drag and drop, paste), the model's answer with its ten bars and the 28x28 image it
// saw, every model side by side, and corrections sent back to the server. No framework, no build
// step; the server's Content-Security-Policy allows only this file and style.css.

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
const STROKE = canvas.width / 14; // about MNIST's stroke width once the digit is scaled to 20 px
const DEBOUNCE_MS = 120;

const state = {
  models: [],       // from /api/models
  model: null,      // the chosen one
  compare: false,   // every model side by side
  feedback: false,  // the server keeps corrections
  feedbackToken: false,  // ...and asks for its token with each one
  strokes: [],      // [{points: [[x, y], ...]}], for undo
  drawing: null,    // the stroke under the pointer
  upload: null,     // {blob, name, bitmap} when the image is a file
  inFlight: false,  // at most one update at a time...
  dirty: false,     // ...and one more after it when the picture changed meanwhile
  timer: 0,
  answer: null,     // the chosen model's last answer
  explain: false,   // ask the chosen model why (POST /api/explain)...
  explainClass: null,  // ...for this class (null: the answer)
};

// ---- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function call(path, options = {}) {
  const res = await fetch(path, options);
  let body = null;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(res.status, `the server answered ${res.status} without JSON`);
  }
  if (!res.ok) throw new ApiError(res.status, body.error || `HTTP ${res.status}`);
  return body;
}

function predict(blob, model) {
  let path = `/api/predict?model=${encodeURIComponent(model)}`;
  if (state.explain && state.model && model === state.model.name) {
    path = `/api/explain?model=${encodeURIComponent(model)}&method=${$("explain-method").value}`;
    if (state.explainClass !== null) path += `&class=${state.explainClass}`;
  }
  return call(path, {
    method: "POST",
    headers: { "Content-Type": blob.type || "application/octet-stream" },
    body: blob,
  });
}

// ---- drawing -------------------------------------------------------------------------------

function hasPicture() {
  return state.strokes.length > 0 || state.upload !== null;
}

function redraw() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (state.upload && state.upload.bitmap) {
    const b = state.upload.bitmap;
    const s = Math.min(canvas.width / b.width, canvas.height / b.height);
    const w = b.width * s;
    const h = b.height * s;
    ctx.drawImage(b, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  }
  ctx.strokeStyle = "#111";
  ctx.fillStyle = "#111";
  ctx.lineWidth = STROKE;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const s of state.strokes) {
    const p = s.points;
    if (p.length === 1) {
      ctx.beginPath();
      ctx.arc(p[0][0], p[0][1], STROKE / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(p[0][0], p[0][1]);
    for (let i = 1; i < p.length; i++) ctx.lineTo(p[i][0], p[i][1]);
    ctx.stroke();
  }
  $("drop-hint").classList.toggle("hidden", hasPicture());
}

function canvasPoint(e) {
  const r = canvas.getBoundingClientRect();
  return [((e.clientX - r.left) / r.width) * canvas.width, ((e.clientY - r.top) / r.height) * canvas.height];
}

canvas.addEventListener("pointerdown", (e) => {
  if (e.pointerType === "mouse" && e.button !== 0) return;
  e.preventDefault();
  try {
    canvas.setPointerCapture(e.pointerId); // keep the stroke when the pointer leaves the canvas
  } catch {
    // not an active pointer (synthetic events): the stroke still works inside the canvas
  }
  if (state.upload) {
    state.upload = null; // drawing starts a new picture
    $("source").textContent = "";
  }
  state.drawing = { points: [canvasPoint(e)] };
  state.strokes.push(state.drawing);
  redraw();
  schedule();
});

canvas.addEventListener("pointermove", (e) => {
  if (!state.drawing) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  for (const ev of events.length ? events : [e]) state.drawing.points.push(canvasPoint(ev));
  redraw();
  schedule();
});

function endStroke() {
  if (!state.drawing) return;
  state.drawing = null;
  schedule(0);
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

function clearAll() {
  state.strokes = [];
  state.upload = null;
  $("source").textContent = "";
  redraw();
  showNothing();
}

function undo() {
  if (state.strokes.length) {
    state.strokes.pop();
  } else if (state.upload) {
    state.upload = null;
    $("source").textContent = "";
  }
  redraw();
  hasPicture() ? schedule(0) : showNothing();
}

// ---- images from files ---------------------------------------------------------------------

async function useFile(file) {
  if (!file) return;
  let bitmap = null;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    bitmap = null; // a format the browser does not show (TIFF, ...): the server may still read it
  }
  state.strokes = [];
  state.upload = { blob: file, name: file.name || "pasted image", bitmap };
  const kb = (file.size / 1024).toFixed(1);
  $("source").textContent = `image: ${state.upload.name} (${file.type || "unknown type"}, ${kb} KiB)`;
  redraw();
  schedule(0);
}

$("upload").addEventListener("click", () => $("file").click());
$("file").addEventListener("change", (e) => {
  useFile(e.target.files[0]);
  e.target.value = "";
});

const drop = $("drop");
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  useFile([...e.dataTransfer.files].find((f) => f.type.startsWith("image/")) || e.dataTransfer.files[0]);
});
document.addEventListener("paste", (e) => {
  const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
  if (file) {
    e.preventDefault();
    useFile(file);
  }
});

function pictureBlob() {
  if (state.upload) return Promise.resolve(state.upload.blob);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// ---- predictions ---------------------------------------------------------------------------

// aria-busy: an answer for the current picture is still to come (screen readers wait for it, and
// so does the browser test).
function busy(on) {
  $("result").setAttribute("aria-busy", on ? "true" : "false");
}

function schedule(delay = DEBOUNCE_MS) {
  busy(true);
  clearTimeout(state.timer);
  state.timer = setTimeout(update, delay);
}

async function update() {
  state.timer = 0;
  if (state.inFlight) {
    state.dirty = true;
    return;
  }
  if (!hasPicture() || !state.model) {
    showNothing();
    busy(false);
    return;
  }
  state.inFlight = true;
  state.dirty = false;
  try {
    const blob = await pictureBlob();
    const started = performance.now();
    if (state.compare) {
      const answers = await Promise.all(
        state.models.map((m) => predict(blob, m.name).catch((err) => ({ model: m.name, error: err }))),
      );
      const mine = answers.find((a) => a.model === state.model.name);
      mine.error ? showError(mine.error) : showAnswer(mine, performance.now() - started);
      showComparison(answers);
    } else {
      showAnswer(await predict(blob, state.model.name), performance.now() - started);
    }
  } catch (err) {
    showError(err);
  } finally {
    state.inFlight = false;
    if (state.dirty) schedule(0);
    else if (!state.timer) busy(false);
  }
}

function drawInput(target, input) {
  if (target.width !== input.width) target.width = input.width;
  if (target.height !== input.height) target.height = input.height;
  const c = target.getContext("2d");
  const img = c.createImageData(input.width, input.height);
  const rgb = input.channels === 3;
  for (let i = 0; i < input.width * input.height; i++) {
    const p = input.pixels;
    img.data.set(rgb ? [p[3 * i], p[3 * i + 1], p[3 * i + 2], 255] : [p[i], p[i], p[i], 255], 4 * i);
  }
  c.putImageData(img, 0, 0);
}

function showNothing() {
  state.answer = null;
  $("digit").textContent = "?";
  $("digit").classList.remove("long");
  $("confidence").textContent = "draw a digit to start";
  $("timing").textContent = "";
  $("error").textContent = "";
  $("seen").getContext("2d").clearRect(0, 0, 28, 28);
  renderBars(null);
  $("feedback").hidden = true;
  $("comparison-rows").replaceChildren();
}

function showError(err) {
  state.answer = null;
  $("digit").textContent = "?";
  $("confidence").textContent = "";
  renderBars(null);
  $("feedback").hidden = true;
  $("error").textContent = err.status === 422 ? `Nothing to read: ${err.message}` : `Error: ${err.message}`;
}

function showAnswer(a, roundTripMs) {
  state.answer = a;
  $("error").textContent = "";
  $("digit").textContent = a.label;
  $("digit").classList.toggle("long", a.label.length > 2);
  $("confidence").textContent = `${(100 * a.confidence).toFixed(1)}% sure · ${a.model}`;
  $("timing").textContent = `server ${a.server_ms.toFixed(1)} ms · round trip ${roundTripMs.toFixed(0)} ms`;
  drawInput($("seen"), a.input);
  $("seen-caption").textContent = `what the model saw (${a.input.height}×${a.input.width})`;
  drawExplanation(a);
  renderBars(a);
  renderFeedback(a);
}

// The attribution map over what the model saw, coloured as mnist-predict --explain draws it: the
// input dimmed, red where pixels pushed the class's score up, blue where they pushed it down.
function drawExplanation(a) {
  const e = a.explanation;
  $("why-figure").hidden = !e;
  if (!e) return;
  const target = $("why");
  target.width = e.width;
  target.height = e.height;
  const c = target.getContext("2d");
  const img = c.createImageData(e.width, e.height);
  const p = a.input.pixels, rgb = a.input.channels === 3;
  const peak = Math.max(e.max_abs, 1e-12);
  for (let i = 0; i < e.width * e.height; i++) {
    const gray = rgb ? 0.299 * p[3 * i] + 0.587 * p[3 * i + 1] + 0.114 * p[3 * i + 2] : p[i];
    const v = e.values[i], s = Math.min(1, Math.abs(v) / peak), base = 0.35 * gray;
    const colour = v >= 0 ? [230, 40, 40] : [30, 110, 230];
    img.data.set([0, 1, 2].map((k) => base * (1 - s) + colour[k] * s).concat(255), 4 * i);
  }
  c.putImageData(img, 0, 0);
  const method = { "integrated-gradients": "integrated gradients", gradient: "gradient × input", occlusion: "occlusion" }[e.method];
  $("why-caption").textContent = `why ${e.class_name}: red up, blue down (${method})`;
}

function renderBars(a) {
  const classes = state.model ? state.model.classes : [];
  const rows = classes.map((name, i) => {
    const li = document.createElement("li");
    const p = a ? a.probabilities[i] : 0;
    if (a && i === a.digit) li.classList.add("top");
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name;
    label.title = name;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    fill.style.display = "block";
    track.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = a ? `${(100 * p).toFixed(1)}%` : "";
    li.append(label, track, pct);
    li.setAttribute("aria-label", `${name}: ${(100 * p).toFixed(1)} percent`);
    if (a && a.explanation && a.explanation.class === i) li.classList.add("explained");
    if (state.explain) {
      // With "explain" on, a class's bar asks why (or why not) that class.
      li.classList.add("pick");
      li.title = `explain ${name}`;
      li.addEventListener("click", () => {
        state.explainClass = a && i === a.digit ? null : i;
        schedule(0);
      });
    }
    return li;
  });
  $("bars").replaceChildren(...rows);
}

function showComparison(answers) {
  const rows = answers.map((a) => {
    const m = state.models.find((x) => x.name === a.model);
    const tr = document.createElement("tr");
    const cells = [m.name, m.dataset, accuracyText(m)];
    if (a.error) {
      cells.push(a.error.status === 422 ? "nothing to read" : "error", "");
    } else {
      cells.push(a.label, `${(100 * a.confidence).toFixed(1)}%`);
    }
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement("td");
    if (!a.error) {
      const mini = document.createElement("canvas");
      mini.width = 28;
      mini.height = 28;
      mini.className = "mini";
      drawInput(mini, a.input);
      td.append(mini);
    }
    tr.append(td);
    return tr;
  });
  $("comparison-rows").replaceChildren(...rows);
}

// ---- corrections ---------------------------------------------------------------------------

function renderFeedback(a) {
  if (!state.feedback) return;
  $("feedback").hidden = false;
  $("feedback-status").textContent = "";
  const buttons = state.model.classes.map((name, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = name;
    b.title = `it was ${name}`;
    b.disabled = i === a.digit;
    b.addEventListener("click", () => sendCorrection(i, name));
    return b;
  });
  $("feedback-buttons").replaceChildren(...buttons);
}

// The server's token for corrections, asked once per tab (sessionStorage) and again when refused.
const TOKEN_KEY = "mnist-serve-token";

function feedbackHeaders(type) {
  const headers = { "Content-Type": type };
  const token = state.feedbackToken ? sessionStorage.getItem(TOKEN_KEY) : null;
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

function askToken(again) {
  const token = window.prompt(
    again
      ? "That token was refused. The token this server was started with:"
      : "This server asks for a token to save corrections (the one it was started with):",
  );
  if (token) sessionStorage.setItem(TOKEN_KEY, token.trim());
  return Boolean(token);
}

async function sendCorrection(label, name) {
  const status = $("feedback-status");
  const buttons = [...$("feedback-buttons").querySelectorAll("button")];
  buttons.forEach((b) => (b.disabled = true));
  status.textContent = "saving…";
  try {
    const blob = await pictureBlob();
    const path = `/api/feedback?model=${encodeURIComponent(state.model.name)}&label=${label}`;
    const send = () =>
      call(path, { method: "POST", headers: feedbackHeaders(blob.type || "application/octet-stream"), body: blob });
    if (state.feedbackToken && !sessionStorage.getItem(TOKEN_KEY) && !askToken(false)) {
      throw new ApiError(401, "no token given");
    }
    let saved;
    try {
      saved = await send();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401 || !state.feedbackToken) throw err;
      sessionStorage.removeItem(TOKEN_KEY);
      if (!askToken(true)) throw err;
      saved = await send();
    }
    status.textContent = `Thank you: saved as ${name} (${saved.saved}).`;
  } catch (err) {
    status.textContent = `Not saved: ${err.message}`;
    buttons.forEach((b) => (b.disabled = false));
  }
}

// ---- models, keys, start -------------------------------------------------------------------

function accuracyText(m) {
  return m.test_accuracy === null ? "n/a" : `${(100 * m.test_accuracy).toFixed(2)}%`;
}

function chooseModel(name) {
  state.model = state.models.find((m) => m.name === name) || state.models[0];
  const m = state.model;
  const folder = m.dataset === "folder";  // a user's own image folder: its classes are its folders
  const data = folder ? `an image folder (${m.classes.length} classes)` : m.dataset;
  $("model-info").textContent = `${m.type.toUpperCase()} trained on ${data}, test accuracy ${accuracyText(m)}`;
  document.querySelector("h1").textContent =
    m.dataset === "mnist" ? "Draw a digit" : folder ? "Draw or upload an image" : `Draw or upload: ${m.dataset}`;
  renderBars(null);
  hasPicture() ? schedule(0) : showNothing();
}

$("model").addEventListener("change", (e) => {
  state.explainClass = null;  // another model, maybe other classes
  chooseModel(e.target.value);
});
$("compare").addEventListener("change", (e) => {
  state.compare = e.target.checked;
  $("comparison").hidden = !state.compare;
  if (hasPicture()) schedule(0);
});
$("explain").addEventListener("change", (e) => {
  state.explain = e.target.checked;
  state.explainClass = null;
  $("explain-method").hidden = !state.explain;
  if (hasPicture()) schedule(0);
});
$("explain-method").addEventListener("change", () => {
  if (hasPicture()) schedule(0);
});
$("clear").addEventListener("click", clearAll);
$("undo").addEventListener("click", undo);

document.addEventListener("keydown", (e) => {
  const tag = document.activeElement?.tagName;
  if (tag === "SELECT" || tag === "INPUT" || tag === "TEXTAREA") return;
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
    e.preventDefault();
    undo();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const key = e.key.toLowerCase();
  if (key === "c") clearAll();
  else if (key === "u") undo();
  else if (key === "o") $("file").click();
});

async function start() {
  redraw();
  try {
    const info = await call("/api/models");
    state.models = info.models;
    state.feedback = info.feedback;
    state.feedbackToken = Boolean(info.feedback_token);
    const select = $("model");
    select.replaceChildren(
      ...info.models.map((m) => {
        const o = document.createElement("option");
        o.value = m.name;
        o.textContent = `${m.name} · ${m.dataset} · ${accuracyText(m)}`;
        return o;
      }),
    );
    select.value = info.default;
    $("compare").disabled = info.models.length < 2;
    chooseModel(info.default);
  } catch (err) {
    $("error").textContent = `Cannot reach the server: ${err.message}`;
  }
}

start();
