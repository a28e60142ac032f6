// Dashboard page-load benchmark: Debian's Chromium (through Playwright's
// library) loads the first screen `loads` times, logged in by API key, and
// reports the time from the navigation's start to the first data drawn (the
// service table's rows, and the live incident list), cold (first load of a
// fresh browser profile) and warm (assets revalidated by ETag).
//
//   node benches/dashboard-page.js http://HOST:PORT API_KEY [loads]
"use strict";

const { chromium } = require("playwright-core");

const [base, apiKey, loadsArg] = process.argv.slice(2);
const loads = Number(loadsArg || 20);

function pct(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.PULSYON_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const login = await context.request.post(base + "/api/v1/session", {
    headers: { "content-type": "application/json" }, data: { api_key: apiKey } });
  if (login.status() !== 200) throw new Error("login: " + login.status());
  const times = [];
  let errors = 0;
  for (let i = 0; i < loads; i++) {
    const page = await context.newPage();
    page.on("console", (m) => { if (m.type() === "error") errors++; });
    await page.goto(base + "/");
    await page.waitForSelector("#service-table tbody tr");
    await page.waitForSelector("#incidents, #no-incidents");
    times.push(await page.evaluate(() => performance.now()));
    await page.close();
  }
  await browser.close();
  const cold = times[0];
  const warm = times.slice(1).sort((a, b) => a - b);
  console.log(JSON.stringify({
    loads, cold_ms: +cold.toFixed(1), warm_p50_ms: +pct(warm, 0.5).toFixed(1),
    warm_p95_ms: +pct(warm, 0.95).toFixed(1), warm_max_ms: +warm[warm.length - 1].toFixed(1), console_errors: errors,
  }));
})().catch((e) => { console.error(e); process.exit(1); });
