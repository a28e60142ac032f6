// The dashboard in a real browser (Debian's Chromium) against the real
// server, with history seeded through the ingest API (servers.js). The
// screenshots of docs/dashboard.md are taken here (into tests/web/.run/screenshots
// unless PULSYON_SCREENSHOTS_DIR says otherwise).
"use strict";

const { test: base, expect } = require("@playwright/test");
const { execFileSync } = require("node:child_process");
const path = require("node:path");
const { readState, startServer, stopServer, root, tls } = require("./servers");

// Screenshots go to the run's own directory; scripts/refresh-dashboard-pictures.sh
// points this at docs/dashboard/ to refresh the docs' pictures on purpose.
const shots = process.env.PULSYON_SCREENSHOTS_DIR || path.join(__dirname, ".run", "screenshots");
require("node:fs").mkdirSync(shots, { recursive: true });

// Every page of a test records console errors, page errors and requests to
// any host but the server's own.
function watch(page, world) {
  const seen = { errors: [], foreign: [] };
  const own = new Set(Object.values(world.servers).map((s) => `${world.scheme}://${s.http}`));
  page.on("console", (m) => { if (m.type() === "error") seen.errors.push(m.text()); });
  page.on("pageerror", (e) => seen.errors.push(e.message));
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (!own.has(u.origin)) seen.foreign.push(r.url());
  });
  return seen;
}

const test = base.extend({
  world: async ({}, use) => { await use(readState()); },
  seen: async ({ page, world }, use) => {
    const seen = watch(page, world);
    await use(seen);
    expect(seen.foreign, "requests to another host").toEqual([]);
  },
});

const url = (world, server) => `${world.scheme}://${world.servers[server || "main"].http}`;

async function login(page, world, user, server) {
  await page.goto(url(world, server) + "/");
  await page.getByLabel("Tenant").fill(user === "gus" ? "globex" : "acme");
  await page.getByLabel("User").fill(user);
  await page.getByLabel("Password").fill(world.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.locator("#who")).toContainText(user);
  await expect(page.locator("#service-table, #services p")).toBeVisible();
}

// A browser context per user, each logged in, its page watched.
async function browse(browser, world, ...users) {
  const out = [];
  for (const user of users) {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    const seen = watch(page, world);
    await login(page, world, user);
    out.push({ context, page, seen });
  }
  return out;
}

function grpcurl(world, tenant, method, data) {
  const out = execFileSync(path.join(root, "tools", "bin", "grpcurl"), [
    "-plaintext", "-H", `authorization: Bearer ${world.keys[tenant]}`, "-d", JSON.stringify(data),
    world.servers.main.grpc, method], { encoding: "utf8" });
  return JSON.parse(out);
}

function psql(world, sql) {
  return execFileSync("psql", [world.databaseUrl, "-qAtc", sql], { encoding: "utf8" }).trim();
}

// Sends `n` server spans of `service` through OTLP/HTTP (JSON), the ingest
// API's HTTP door, each answered with `status`.
let spanCounter = 0;
async function spans(world, tenant, service, n, status, server) {
  const now = BigInt(Date.now()) * 1000000n;
  const hex = (len) => [...Array(len)].map(() => Math.floor(Math.random() * 16).toString(16)).join("");
  const list = [...Array(n)].map((_, i) => ({
    traceId: hex(32), spanId: hex(16), name: "POST /pay", kind: 2,
    startTimeUnixNano: String(now - BigInt(i + 1) * 1000000n - 40000000n),
    endTimeUnixNano: String(now - BigInt(i + 1) * 1000000n),
    attributes: [
      { key: "http.route", value: { stringValue: "/pay" } },
      { key: "http.request.method", value: { stringValue: "POST" } },
      { key: "http.response.status_code", value: { intValue: String(status) } },
      { key: "test.span", value: { intValue: String(spanCounter++) } },
    ],
    status: { code: status >= 500 ? 2 : 1 },
  }));
  const res = await fetch(url(world, server) + "/v1/traces", {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${world.keys[tenant]}` },
    body: JSON.stringify({ resourceSpans: [{
      resource: { attributes: [{ key: "service.name", value: { stringValue: service } }] },
      scopeSpans: [{ spans: list }] }] }),
  });
  if (!res.ok) throw new Error(`OTLP export: ${res.status} ${await res.text()}`);
}

// Sends failing requests of `service` until `until()` holds.
async function spikeUntil(world, service, until, server) {
  const deadline = Date.now() + 120000;
  while (!(await until())) {
    if (Date.now() > deadline) throw new Error(`no incident for ${service}`);
    await spans(world, "acme", service, 40, 503, server);
    await new Promise((r) => setTimeout(r, 500));
  }
}

test("a viewer sees every seeded service with the p95 the Query API gives, on a wide and a narrow screen", async ({ page, world, seen }) => {
  // Another tenant's service never shows.
  await spans(world, "globex", "warehouse", 20, 200);
  await login(page, world, "vera");
  await expect(page.locator("#service-table tbody tr")).toHaveCount(3);
  // Over TLS the browser speaks HTTP/2 (ALPN), its event stream included; else HTTP/1.1.
  const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
  expect(protocol).toBe(tls ? "h2" : "http/1.1");
  // The same window through the Query API (grpcurl), compared exactly; a
  // minute boundary between the two reads moves the window, so read again.
  let mismatch = null;
  for (let attempt = 0; attempt < 4; attempt++) {
    await page.reload();
    await expect(page.locator("#service-table tbody tr")).toHaveCount(3);
    const shown = await page.locator("#service-table tbody tr").evaluateAll((rows) => rows.map((r) =>
      [r.dataset.service, Number(r.querySelector('[data-col="p95"]').dataset.value), r.querySelector('[data-col="p95"]').textContent]));
    const api = grpcurl(world, "acme", "pulsyon.v1.Query/GetServiceHealth", { window: "3600s" });
    const byName = new Map(api.services.map((s) => [s.service, s.latency.p95Ms]));
    expect(shown.map((s) => s[0]).sort()).toEqual([...byName.keys()].sort());
    mismatch = shown.find(([name, p95]) => Math.abs(p95 - byName.get(name)) > 1e-9 * Math.max(1, p95));
    if (!mismatch) {
      for (const [, p95, text] of shown) expect(text).toBe(p95 >= 1000 ? (p95 / 1000).toFixed(2) + " s" : p95.toFixed(1) + " ms");
      break;
    }
  }
  expect(mismatch, "p95 differs from the Query API's").toBeUndefined();
  await expect(page.locator("#service-table")).not.toContainText("warehouse");
  await expect(page.locator("#live")).toHaveText("Live");
  await page.screenshot({ path: path.join(shots, "overview.png"), fullPage: true });

  // Keyboard: the range buttons are buttons; Enter on one switches.
  await page.locator('[data-range="24h"]').focus();
  await page.keyboard.press("Enter");
  await expect(page.locator('[data-range="24h"]')).toHaveAttribute("aria-pressed", "true");
  await expect(page.locator("#service-table tbody tr")).toHaveCount(3);

  // A phone's width: nothing wider than the screen but the tables' own scroll.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: path.join(shots, "overview-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });

  // Service detail and the ingest page.
  const first = await page.locator("#service-table tbody tr").first().getAttribute("data-service");
  await page.getByRole("link", { name: first, exact: true }).first().click();
  await expect(page.locator("#endpoints tbody tr").first()).toBeVisible();
  await expect(page.locator(".chart canvas").first()).toBeVisible();
  await page.screenshot({ path: path.join(shots, "service.png"), fullPage: true });
  await page.getByRole("link", { name: "Ingest" }).click();
  await expect(page.locator("#ingest-totals")).toContainText("Received");
  await expect(page.locator(".chart canvas").first()).toBeVisible();
  await page.screenshot({ path: path.join(shots, "ingest.png"), fullPage: true });
  expect(seen.errors, "console errors").toEqual([]);
});

test("an incident provoked through the ingest API appears live; a responder acknowledges it and another browser sees it at once", async ({ browser, world }) => {
  const [
    { context: viewer, page: vpage, seen: vseen },
    { context: responder, page: rpage, seen: rseen },
  ] = await browse(browser, world, "vera", "rob");
  const row = (page) => page.locator("#incidents tr[data-incident]", { hasText: "billing" });
  await spikeUntil(world, "billing", async () => (await row(vpage).count()) > 0);
  // Both pages got it live, without a reload.
  await expect(row(vpage)).toContainText("open");
  await expect(row(rpage)).toBeVisible();
  await expect(row(vpage).locator(".reason").first()).toContainText("threshold");
  // A viewer has no button, and the API refuses the call all the same.
  await expect(row(vpage).locator("button")).toHaveCount(0);
  const id = await row(vpage).getAttribute("data-incident");
  const refused = await viewer.request.post(`${url(world)}/api/v1/incidents/${id}/acknowledge`, {
    headers: { "content-type": "application/json" }, data: { note: "not mine" } });
  expect(refused.status()).toBe(403);
  // The responder acknowledges with a note; the viewer's page changes live.
  await row(rpage).getByRole("textbox").fill("on it");
  await row(rpage).getByRole("button", { name: "Acknowledge" }).click();
  await expect(row(vpage)).toContainText("acknowledged");
  await expect(row(vpage)).toContainText("by rob");
  await vpage.screenshot({ path: path.join(shots, "incidents-live.png"), fullPage: true });
  // The incident's page: its timeline names who did what.
  await rpage.goto(`${url(world)}/#/incident/${id}`);
  await expect(rpage.locator("#timeline")).toContainText("acknowledged by rob");
  await expect(rpage.locator("#timeline")).toContainText("on it");
  await expect(rpage.getByRole("button", { name: "Resolve" })).toBeVisible();
  await rpage.screenshot({ path: path.join(shots, "incident.png"), fullPage: true });
  expect(vseen.errors, "console errors").toEqual([]);
  expect(rseen.errors, "console errors").toEqual([]);
  expect(vseen.foreign.concat(rseen.foreign)).toEqual([]);
  await viewer.close();
  await responder.close();
});

test("a responder silences an incident's notifications from its page; an admin sees receivers and silences and ends it", async ({ browser, world }) => {
  // A receiver of acme's (its secret never shown), written as CreateReceiver would.
  psql(world, "INSERT INTO receivers (tenant_id, name, kind, url, secret) SELECT tenant_id, 'team', 'webhook', " +
    "'http://127.0.0.1:9/team', 'whsec_c2VjcmV0LW5ldmVyLXNob3du' FROM tenants WHERE name = 'acme'");
  const [
    { context: responder, page: rpage, seen: rseen },
    { context: admin, page: apage, seen: aseen },
  ] = await browse(browser, world, "rob", "ada");
  await expect(rpage.locator("#nav-notifications")).toBeHidden();
  await spikeUntil(world, "payroll", async () =>
    psql(world, "SELECT count(*) FROM incidents WHERE service = 'payroll' AND status = 'open'") !== "0");
  const id = psql(world, "SELECT incident_id FROM incidents WHERE service = 'payroll' AND status = 'open'");
  await rpage.goto(`${url(world)}/#/incident/${id}`);
  await rpage.getByLabel(`Why silence incident ${id}`).fill("deploying a fix");
  await rpage.getByRole("button", { name: "Silence notifications" }).click();
  await expect(rpage.locator("main")).toContainText("no notifications until it resolves");
  // The acknowledgement is planned for the receiver and held by the silence.
  await rpage.getByRole("button", { name: "Acknowledge" }).click();
  await expect(async () => {
    await rpage.reload();
    await expect(rpage.locator("#timeline")).toContainText("team: held by silence", { timeout: 1000 });
  }).toPass({ timeout: 30000 });
  await expect(rpage.locator("#deliveries")).toContainText("acknowledged");
  await rpage.screenshot({ path: path.join(shots, "incident-notifications.png"), fullPage: true });
  // The admin's page: receivers (fingerprint only), routes, the silence, ended by hand.
  await apage.getByRole("link", { name: "Notifications" }).click();
  await expect(apage.locator("#receivers")).toContainText("team");
  await expect(apage.locator("#receivers")).toContainText("sha256:");
  await expect(apage.locator("main")).not.toContainText("c2VjcmV0");
  await expect(apage.locator("main")).toContainText("every change goes to every receiver");
  const row = apage.locator("#silences tr", { hasText: "deploying a fix" });
  await expect(row).toContainText("rob");
  await expect(row).toContainText("active");
  await apage.screenshot({ path: path.join(shots, "notifications.png"), fullPage: true });
  await row.getByRole("button", { name: "End now" }).click();
  await expect(apage.locator("#silences tr", { hasText: "deploying a fix" })).toContainText("ended");
  expect(rseen.errors.concat(aseen.errors), "console errors").toEqual([]);
  expect(rseen.foreign.concat(aseen.foreign)).toEqual([]);
  await responder.close();
  await admin.close();
});

test("a viewer reads each objective's attainment, budget left, burn rate per window and exhaustion", async ({ page, world, seen }) => {
  // An objective of acme's checkout (seeded with some 5xx), as Admin.SetObjective writes it:
  // 95 %, far from burning (no alert, no incident for the other tests).
  psql(world, "INSERT INTO objectives (tenant_id, service, kind, target_percent, period_days) " +
    "SELECT tenant_id, 'checkout', 'availability', 95, 30 FROM tenants WHERE name = 'acme' ON CONFLICT DO NOTHING");
  await login(page, world, "vera");
  await page.getByRole("link", { name: "Objectives" }).click();
  const row = page.locator("#objectives tbody tr", { hasText: "checkout" });
  await expect(row).toContainText("no 5xx, 30 days");
  await expect(row).toContainText("95%");
  await expect(row).not.toContainText("100.000%");
  // The same standing the Query API answers.
  const api = grpcurl(world, "acme", "pulsyon.v1.Query/ListObjectives", {}).objectives
    .find((o) => o.objective.service === "checkout");
  await expect(row).toContainText(Number(api.attainmentPercent).toFixed(3) + "%");
  await expect(row.locator("meter")).toHaveCount(7);
  await expect(row.getByLabel("Burn rate per window of checkout")).toContainText("5m");
  await expect(row.getByLabel("Burn rate per window of checkout")).toContainText("3d");
  await page.screenshot({ path: path.join(shots, "objectives.png"), fullPage: true });
  expect(seen.errors, "console errors").toEqual([]);
  expect(seen.foreign).toEqual([]);
});

test("a page whose stream drops between updates gets every missed update once, in order", async ({ browser, world }) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const seen = watch(page, world);
  // Record each update event the page's streams deliver.
  await page.addInitScript(() => {
    const Original = window.EventSource;
    window.__updates = [];
    window.EventSource = class extends Original {
      constructor(u, o) {
        super(u, o);
        this.addEventListener("update", (e) => window.__updates.push(Number(e.lastEventId)));
      }
    };
  });
  await login(page, world, "vera");
  await expect(page.locator("#live")).toHaveText("Live");
  const start = await page.evaluate(async () => (await (await fetch("/api/v1/incidents")).json()).seq);
  const acme = psql(world, "SELECT tenant_id FROM tenants WHERE name = 'acme'");
  const expected = () => psql(world, `SELECT string_agg(seq::text, ',' ORDER BY seq) FROM incident_updates WHERE tenant_id = ${acme} AND seq > ${start}`)
    .split(",").filter(Boolean).map(Number);
  const row = page.locator("#incidents tr[data-incident]", { hasText: "ledger" });
  await spikeUntil(world, "ledger", async () => (await row.count()) > 0);
  const id = await row.getAttribute("data-incident");

  // The page's server stops: its stream drops. Through the other server,
  // a responder acknowledges and resolves the incident meanwhile.
  await stopServer(world, "main");
  await expect(page.locator("#live")).not.toHaveText("Live");
  const other = await browser.newContext({ ignoreHTTPSErrors: true });
  const login2 = await other.request.post(`${url(world, "other")}/api/v1/session`, {
    headers: { "content-type": "application/json" },
    data: { tenant: "acme", user: "rob", password: world.password } });
  expect(login2.status()).toBe(200);
  for (const what of ["acknowledge", "resolve"]) {
    const res = await other.request.post(`${url(world, "other")}/api/v1/incidents/${id}/${what}`, {
      headers: { "content-type": "application/json" }, data: { note: `${what} while the page was away` } });
    expect(res.status()).toBe(200);
  }
  await other.close();
  // The server comes back where it was; the page resumes after the last update it had.
  await startServer(world, "main");
  await expect(page.locator("#live")).toHaveText("Live");
  await expect(row).toHaveCount(0); // resolved: off the live list
  let want = expected();
  await expect.poll(async () => page.evaluate(() => window.__updates.length)).toBeGreaterThanOrEqual(want.length);
  want = expected();
  const got = await page.evaluate(() => window.__updates);
  expect(got, "every update once, in order").toEqual(want);
  expect(seen.foreign).toEqual([]);
  await context.close();
});

test("a wrong password is refused, repeated failures are throttled, and logout ends the session", async ({ page, world, seen }) => {
  await page.goto(url(world) + "/");
  const attempt = async (password) => {
    await page.getByLabel("Tenant").fill("acme");
    await page.getByLabel("User").fill("tess");
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Log in" }).click();
  };
  for (let i = 0; i < 5; i++) {
    await attempt("not the password " + i);
    await expect(page.locator("#login-error")).toHaveText("Wrong tenant, user or password.");
    await page.locator("#login-error").evaluate((e) => { e.textContent = ""; });
  }
  // Throttled now, even with the right password.
  await attempt(world.password);
  await expect(page.locator("#login-error")).toContainText("Too many failed logins");
  await page.screenshot({ path: path.join(shots, "login.png") });

  await login(page, world, "vera");
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "pulsyon_session");
  expect(session.httpOnly).toBe(true);
  expect(session.sameSite).toBe("Strict");
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page.getByRole("button", { name: "Log in" })).toBeVisible();
  await page.reload();
  await expect(page.getByRole("button", { name: "Log in" })).toBeVisible();
  // The old cookie opens nothing any more.
  const res = await fetch(`${url(world)}/api/v1/overview`, { headers: { cookie: `pulsyon_session=${session.value}` } });
  expect(res.status).toBe(401);
});
