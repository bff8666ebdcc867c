// Shared by the browser tests (browser_test.mjs, cockpit_test.mjs): Debian's chromium as they
// launch it, and a 7 drawn with the mouse on the drawing page's canvas.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export async function drawSeven(page) {
  const box = await page.locator("#canvas").boundingBox();
  const at = (x, y) => [box.x + x * box.width, box.y + y * box.height];
  await page.mouse.move(...at(0.25, 0.2));
  await page.mouse.down();
  await page.mouse.move(...at(0.75, 0.2), { steps: 12 });
  await page.mouse.move(...at(0.45, 0.85), { steps: 16 });
  await page.mouse.up();
}
