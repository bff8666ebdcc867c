// The research cockpit (/runs) in a real browser (Debian's chromium through playwright-core): the
// runs table sorted, a run opened, a curve hovered, a confusion cell clicked and its images found,
// two runs compared with their config diff, a training started meanwhile watched live until it
// completes, and the explanation overlay on the drawing page; no console errors; screenshots at
// full width and at 360 px. Every check prints one line; the first failure ends the run (exit 1).
// Usage: node cockpit_test.mjs URL RUNS_DIR TRAIN_COMMAND_JSON SCREENSHOT_DIR
import { drawSeven, launch } from "./pages.mjs";
import { spawn } from "node:child_process";
import path from "node:path";

const [url, runsDir, trainJson, shotDir] = process.argv.slice(2);
const deadline = setTimeout(() => {
  console.error("FAILED: the cockpit test took longer than 280 s");
  process.exit(1);
}, 280_000);

let browser, training;
function check(ok, what) {
  if (!ok) throw new Error(what);
  console.log(`ok: ${what}`);
}

try {
  browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  const watch = (p, who) => {
    p.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${who} console ${m.type()}: ${m.text()}`);
    });
    p.on("pageerror", (e) => problems.push(`${who} page error: ${e.message}`));
  };
  watch(page, "desktop");

  // The table: both runs, sorted by test accuracy when its header is clicked (twice: descending).
  await page.goto(`${url}runs`);
  await page.waitForSelector("#runs-body tr");
  const names = () => page.$$eval("#runs-body tr", (rows) => rows.map((r) => r.dataset.name));
  check((await names()).length === 2, `the table lists the 2 runs: ${await names()}`);
  const accuracies = () => page.$$eval("#runs-body tr", (rows) => rows.map((r) => parseFloat(r.children[8].textContent)));
  await page.click('button.sort[data-key="test_accuracy"]');
  let acc = await accuracies();
  check(acc[0] <= acc[1], `sorted by test accuracy, ascending: ${acc}`);
  await page.click('button.sort[data-key="test_accuracy"]');
  acc = await accuracies();
  check(acc[0] >= acc[1], `and descending on a second click: ${acc}`);
  await page.fill("#filter", "lr2");
  check((await names()).join() === "mlp_lr2", `the filter keeps ${await names()}`);
  await page.fill("#filter", "");
  await page.screenshot({ path: path.join(shotDir, "runs_table.png") });

  // Compare: select both, see the curves overlaid and the keys that differ.
  for (const box of await page.$$("#runs-body input[type=checkbox]")) await box.check();
  await page.click("#compare-selected");
  await page.waitForSelector("#config-diff tbody tr th");
  const diffKeys = await page.$$eval("#config-diff tbody th", (ths) => ths.map((t) => t.textContent));
  check(diffKeys.includes("optim.lr") && !diffKeys.includes("model.type"),
    `the config diff shows only the keys that differ: ${diffKeys}`);
  const overlaid = await page.$$eval("#compare-charts figure", (f) => f[0].querySelectorAll("polyline").length);
  check(overlaid >= 2, `the loss chart overlays both runs (${overlaid} lines)`);
  await page.screenshot({ path: path.join(shotDir, "runs_compare.png"), fullPage: true });

  // A run's page: hover a curve, click a confusion cell, find its images.
  await page.goto(`${url}runs#run=mlp_fast`);
  await page.waitForSelector("#confusion button.cm");
  const hit = page.locator("#charts figure").nth(1).locator("rect.hit");
  const hb = await hit.boundingBox();
  await page.mouse.move(hb.x + hb.width * 0.98, hb.y + hb.height / 2);
  const tip = await page.locator("#charts figure").nth(1).locator(".tip").textContent();
  check(/epoch 2/.test(tip) && /train_accuracy: \d/.test(tip), `hovering the accuracy curve reads out: ${tip.replace(/\n/g, " | ")}`);
  // The off-diagonal cell with the most images.
  const cell = await page.$$eval("#confusion button.cm", (bs) => {
    const off = bs.filter((b) => b.dataset.t !== b.dataset.p).sort((a, b) => Number(b.textContent) - Number(a.textContent))[0];
    return { t: off.dataset.t, p: off.dataset.p, n: Number(off.textContent) };
  });
  await page.click(`#confusion button.cm[data-t="${cell.t}"][data-p="${cell.p}"]`);
  await page.waitForSelector("#cell-images img");
  const shown = await page.$$eval("#cell-images figure", (fs) => fs.map((f) => f.textContent));
  check(shown.length === Math.min(cell.n, 48) && shown.every((t) => t.includes(`${cell.t}→${cell.p}`)),
    `cell true ${cell.t} / predicted ${cell.p} shows its ${shown.length} images, each ${cell.t}→${cell.p}`);
  await page.waitForFunction(() => [...document.querySelectorAll("#cell-images img")].every((i) => i.complete && i.naturalWidth === 28));
  check(true, "the cell's images loaded (28x28 each)");
  await page.screenshot({ path: path.join(shotDir, "runs_run.png"), fullPage: true });

  // Live: a training started now appears in the table and is followed on its page to the end.
  const [cmd, ...args] = JSON.parse(trainJson);
  training = spawn(cmd, args, { stdio: "ignore" });
  await page.goto(`${url}runs`);
  await page.waitForSelector('#runs-body tr[data-name="live"]', { timeout: 30_000 });
  check(true, "a training started after the page opened appears in the table");
  await page.goto(`${url}runs#run=live`);
  await page.waitForSelector("#live-text", { timeout: 30_000 });
  const first = await page.textContent("#live-text");
  await page.waitForFunction((t) => {
    const now = document.getElementById("live-text");
    return now && now.textContent !== t;
  }, first, { timeout: 30_000 });
  const second = await page.textContent("#live-text");
  check(true, `live progress advances: "${first}" then "${second}"`);
  await page.screenshot({ path: path.join(shotDir, "runs_live.png"), fullPage: true });
  await page.waitForSelector("#confusion button.cm", { timeout: 150_000 });
  const rows = await page.$$eval("#charts figure", (f) => f[0].querySelectorAll("circle").length);
  check(rows >= 3, `the finished run's curves grew to every epoch (${rows} points on the loss chart)`);

  // Explain on the drawing page: draw, then the overlay of why.
  await page.goto(url);
  await page.waitForSelector("#model option", { state: "attached" });
  await page.check("#explain");
  await drawSeven(page);
  await page.waitForFunction(() => !document.getElementById("why-figure").hidden &&
    document.getElementById("result").getAttribute("aria-busy") === "false", null, { timeout: 20_000 });
  const why = await page.evaluate(() => {
    const c = document.getElementById("why");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let red = 0, blue = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] > d[i + 2] + 60) red++;
      if (d[i + 2] > d[i] + 60) blue++;
    }
    return { red, blue, caption: document.getElementById("why-caption").textContent, digit: document.getElementById("digit").textContent };
  });
  check(why.red > 10 && why.caption.startsWith(`why ${why.digit}`), `the explanation overlay is drawn: ${why.red} red and ${why.blue} blue pixels, "${why.caption}"`);
  // Another class: click its bar.
  const other = why.digit === "1" ? 2 : 1;
  await page.click(`#bars li:nth-child(${other + 1})`);
  await page.waitForFunction((k) => document.getElementById("why-caption").textContent.startsWith(`why ${k}`), String(other), { timeout: 20_000 });
  check(true, `clicking class ${other}'s bar explains class ${other}`);
  await page.screenshot({ path: path.join(shotDir, "serve_explain.png") });

  // A phone: 360 px wide, the table and a run's page scroll inside themselves, nothing wider.
  const phone = await browser.newContext({ viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true });
  const mobile = await phone.newPage();
  watch(mobile, "phone");
  for (const view of ["runs", "runs#run=mlp_fast"]) {
    await mobile.goto(`${url}${view}`);
    await mobile.waitForSelector(view.includes("#run") ? "#confusion button.cm" : "#runs-body tr");
    const width = await mobile.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 360, `${view} at 360 px: nothing overflows (${width} px)`);
  }
  await mobile.screenshot({ path: path.join(shotDir, "runs_mobile.png"), fullPage: true });

  check(problems.length === 0, `no console errors${problems.length ? ": " + problems.join("; ") : ""}`);
  await browser.close();
  clearTimeout(deadline);
  console.log("cockpit test passed");
} catch (err) {
  console.error(`FAILED: ${err.message}`);
  if (training) training.kill("SIGKILL");
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
