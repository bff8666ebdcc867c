// The page in a real browser (Debian's chromium through playwright-core): every check prints one
// line; the first failure ends the run with exit status 1. run_browser_test.sh starts the server.
// Usage: node browser_test.mjs URL UPLOAD_PNG UPLOAD_LABEL FEEDBACK_DIR SCREENSHOT_DIR
import { drawSeven, launch } from "./pages.mjs";
import fs from "node:fs";
import path from "node:path";

const [url, uploadPath, uploadLabel, feedbackDir, shotDir, token] = process.argv.slice(2);
const deadline = setTimeout(() => {
  console.error("FAILED: the browser test took longer than 240 s");
  process.exit(1);
}, 240_000);

let browser;
function check(ok, what) {
  if (!ok) throw new Error(what);
  console.log(`ok: ${what}`);
}

async function answer(page, previous) {
  // The answer once the debounced request has been answered: a new server time, nothing in flight.
  // The answer for the whole picture, not one for a half-drawn stroke: nothing scheduled or in flight.
  await page.waitForFunction((prev) => {
    const t = document.getElementById("timing").textContent;
    const settled = document.getElementById("result").getAttribute("aria-busy") === "false";
    return settled && t && t !== prev;
  }, previous, { timeout: 15_000 });
  return page.evaluate(() => ({
    digit: document.getElementById("digit").textContent,
    confidence: document.getElementById("confidence").textContent,
    timing: document.getElementById("timing").textContent,
    bars: [...document.querySelectorAll("#bars li")].map((li) => ({
      name: li.querySelector(".name").textContent,
      pct: parseFloat(li.querySelector(".pct").textContent),
      width: parseFloat(li.querySelector(".fill").style.width),
      top: li.classList.contains("top"),
    })),
    // Not blank: differs from an empty canvas of its size (toDataURL, not getImageData, so the
    // test itself provokes no readback warning in the console).
    seenInk: (() => {
      const seen = document.getElementById("seen");
      const blank = document.createElement("canvas");
      blank.width = seen.width;
      blank.height = seen.height;
      return seen.toDataURL() !== blank.toDataURL();
    })(),
    seen: document.getElementById("seen").toDataURL(),
    error: document.getElementById("error").textContent,
  }));
}

async function drawCrossbar(page) {
  const box = await page.locator("#canvas").boundingBox();
  const at = (x, y) => [box.x + x * box.width, box.y + y * box.height];
  await page.mouse.move(...at(0.4, 0.52));
  await page.mouse.down();
  await page.mouse.move(...at(0.72, 0.52), { steps: 10 });
  await page.mouse.up();
}

try {
  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // The server wants its token for corrections: the page asks for it (a prompt). The first answer
  // is wrong, so the page must say so and ask again; after that it must not ask any more.
  const prompts = [];
  page.on("dialog", async (d) => {
    prompts.push(d.message());
    await d.accept(prompts.length === 1 ? "not-the-token" : token);
  });
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`));

  await page.goto(url);
  await page.waitForFunction(() => document.querySelectorAll("#model option").length === 2);
  const models = await page.$$eval("#model option", (os) => os.map((o) => o.textContent));
  check(models.every((m) => /mnist · \d+\.\d\d%/.test(m)), `model picker lists name, data set, accuracy: ${models.join(" | ")}`);

  // Draw a 7 with the mouse; the answer arrives while drawing.
  await drawSeven(page);
  let a = await answer(page, "");
  check(a.digit === "7", `drawn 7 is read as ${a.digit} (${a.confidence})`);
  check(a.bars.length === 10, "ten bars");
  const total = a.bars.reduce((s, b) => s + b.pct, 0);
  check(Math.abs(total - 100) < 1.5, `bars add up to 100% (${total.toFixed(1)})`);
  check(a.bars[7].top && a.bars[7].width > 50, `the 7 bar is the top one (${a.bars[7].width}% wide)`);
  check(a.seenInk, "the 28x28 image the model saw is shown");
  await page.screenshot({ path: path.join(shotDir, "serve_page.png") });

  // Undo and clear, by button and by key. Two strokes, so that undo is not clear: the first undo
  // takes the crossbar alone (an answer for the 7 as first drawn), the second the 7.
  await drawCrossbar(page);
  const two = await answer(page, a.timing);
  check(two.seen !== a.seen, "a second stroke changes what the model saw");
  await page.click("#undo");
  const one = await answer(page, two.timing);
  check(one.digit === a.digit && one.seen === a.seen && one.seenInk,
    `undo removes the last stroke only: the first stroke's answer again (${one.digit})`);
  await page.click("#undo");
  await page.waitForFunction(() => document.getElementById("digit").textContent === "?");
  check(true, "undo again removes the first stroke and the answer");
  await drawSeven(page);
  a = await answer(page, "");
  await page.keyboard.press("c");
  await page.waitForFunction(() => document.getElementById("digit").textContent === "?");
  check(true, "key C clears");

  // Upload a user's image through the file picker.
  await page.setInputFiles("#file", uploadPath);
  a = await answer(page, "");
  check(a.digit === uploadLabel, `uploaded ${path.basename(uploadPath)} (a ${uploadLabel}) is read as ${a.digit}`);
  check((await page.textContent("#source")).includes(path.basename(uploadPath)), "the file's name is shown");

  // Drop the same file on the canvas.
  await page.keyboard.press("c");
  const bytes = fs.readFileSync(uploadPath).toString("base64");
  const dt = await page.evaluateHandle((b64) => {
    const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const t = new DataTransfer();
    t.items.add(new File([bin], "dropped.png", { type: "image/png" }));
    return t;
  }, bytes);
  await page.dispatchEvent("#drop", "drop", { dataTransfer: dt });
  a = await answer(page, "");
  check(a.digit === uploadLabel && (await page.textContent("#source")).includes("dropped.png"), `a dropped file is read as ${a.digit}`);

  // Paste it.
  await page.keyboard.press("c");
  await page.evaluate((b64) => {
    const bin = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const t = new DataTransfer();
    t.items.add(new File([bin], "pasted.png", { type: "image/png" }));
    document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: t, bubbles: true }));
  }, bytes);
  a = await answer(page, "");
  check(a.digit === uploadLabel && (await page.textContent("#source")).includes("pasted.png"), `a pasted image is read as ${a.digit}`);

  // Switch model: the answer names the other model.
  const second = await page.$eval("#model option:nth-child(2)", (o) => o.value);
  const before = a.timing;
  await page.selectOption("#model", second);
  a = await answer(page, before);
  check(a.confidence.includes(second), `switching model answers with ${second}`);

  // Every model side by side.
  await page.check("#compare");
  await page.waitForFunction(() => document.querySelectorAll("#comparison-rows tr").length === 2);
  // Each row's answer cell (the fourth), not the whole row: its accuracy and confidence hold digits too.
  const rows = await page.$$eval("#comparison-rows tr", (trs) =>
    trs.map((tr) => [...tr.children].map((td) => td.textContent.trim())));
  check(rows.length === 2 && rows.every((r) => r[3] === uploadLabel),
    `comparison answers ${uploadLabel} for both models: ${rows.map((r) => r.join(" ")).join(" | ")}`);

  // A correction, found on disk.
  const wrong = uploadLabel === "4" ? "5" : "4";
  await page.click(`#feedback-buttons button:nth-child(${Number(wrong) + 1})`);
  await page.waitForFunction(() => document.getElementById("feedback-status").textContent.startsWith("Thank you"));
  const saved = fs.readdirSync(path.join(feedbackDir, "mnist", wrong));
  check(saved.length === 1 && saved[0].endsWith(".png"), `correction saved in feedback/mnist/${wrong}/${saved[0]}`);
  const csv = fs.readFileSync(path.join(feedbackDir, "feedback.csv"), "utf8").trim().split("\n");
  check(csv.length === 2 && csv[1].includes(`,${second},${wrong},${wrong},`), `feedback.csv line: ${csv[1]}`);
  check(prompts.length === 2 && /token/.test(prompts[0]) && /refused/.test(prompts[1]),
    `the page asked for the token, and again after a wrong one: ${prompts.join(" | ")}`);
  await page.screenshot({ path: path.join(shotDir, "serve_compare.png"), fullPage: true });
  // A second correction, for the other model's answer: the token is kept for the tab, nothing is
  // asked.
  const first = await page.$eval("#model option:nth-child(1)", (o) => o.value);
  await page.selectOption("#model", first);
  a = await answer(page, a.timing);
  const other = wrong === "5" ? "6" : "5";
  await page.click(`#feedback-buttons button:nth-child(${Number(other) + 1})`);
  await page.waitForFunction(() => document.getElementById("feedback-status").textContent.startsWith("Thank you"));
  const lines = fs.readFileSync(path.join(feedbackDir, "feedback.csv"), "utf8").trim().split("\n");
  check(lines.length === 3 && prompts.length === 2, `a second correction saved without asking again (${prompts.length} prompts)`);

  // The keyboard reaches every control.
  await page.keyboard.press("c");
  const reached = new Set();
  for (let i = 0; i < 15; i++) {
    await page.keyboard.press("Tab");
    reached.add(await page.evaluate(() => document.activeElement.id));
  }
  check(["model", "compare", "canvas", "undo", "clear", "upload"].every((id) => reached.has(id)), `Tab reaches the controls: ${[...reached].join(", ")}`);

  // A phone: 360 px wide, nothing wider than the screen, drawing with touch.
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true });
  const mobile = await phone.newPage();
  mobile.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`console (phone) ${m.type()}: ${m.text()}`);
  });
  mobile.on("pageerror", (e) => problems.push(`page error (phone): ${e.message}`));
  await mobile.goto(url);
  await mobile.waitForFunction(() => document.querySelectorAll("#model option").length === 2);
  const width = await mobile.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 360, `at 360 px nothing overflows (page is ${width} px wide)`);
  const box = await mobile.locator("#canvas").boundingBox();
  check(box.width >= 250, `the canvas is ${Math.round(box.width)} px wide on the phone`);
  // A touch stroke through Pointer Events.
  await mobile.evaluate(() => {
    const c = document.getElementById("canvas");
    const r = c.getBoundingClientRect();
    const ev = (type, x, y) => c.dispatchEvent(new PointerEvent(type, {
      pointerId: 7, pointerType: "touch", isPrimary: true, bubbles: true, button: 0,
      clientX: r.left + x * r.width, clientY: r.top + y * r.height,
    }));
    ev("pointerdown", 0.5, 0.15);
    for (let i = 1; i <= 20; i++) ev("pointermove", 0.5, 0.15 + (0.7 * i) / 20);
    ev("pointerup", 0.5, 0.85);
  });
  const m = await answer(mobile, "");
  check(m.digit === "1", `a touch stroke down the middle is read as ${m.digit}`);
  await mobile.screenshot({ path: path.join(shotDir, "serve_mobile.png"), fullPage: true });

  // The refused token's 401 is the one error the browser reports by design.
  const unexpected = problems.filter((p) => !p.includes("status of 401"));
  check(unexpected.length === 0, `no console errors or failed requests${unexpected.length ? ": " + unexpected.join("; ") : ""}`);
  await browser.close();
  clearTimeout(deadline);
  console.log("browser test passed");
} catch (err) {
  console.error(`FAILED: ${err.message}`);
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
