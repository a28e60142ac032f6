// The dashboard tests' world: a fresh database, two tenants with users,
// and Pulsyon server processes (the real binary) on fixed loopback ports,
// so that a test can stop one and start it again where it was.
"use strict";

const { execFileSync, spawn } = require("node:child_process");
const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");

const root = path.resolve(__dirname, "..", "..");
const runDir = path.join(__dirname, ".run");
const statePath = path.join(runDir, "state.json");
const bin = process.env.PULSYON_BIN || path.join(root, "target", "debug", "pulsyon");
const seedBin = process.env.PULSYON_SEED_BIN || path.join(root, "target", "debug", "pulsyon-seed");
// PULSYON_WEB_TLS=1: the HTTP port serves TLS (a demo CA's certificate), so
// the browser speaks HTTP/2 to it; this process's own requests (readiness,
// OTLP spans) accept that certificate.
const tls = Boolean(process.env.PULSYON_WEB_TLS);
if (tls) process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0";
const scheme = tls ? "https" : "http";
const PASSWORD = "correct horse battery staple";

function cli(args, input) {
  return execFileSync(bin, args, { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

function readState() {
  return JSON.parse(fs.readFileSync(statePath, "utf8"));
}

function writeState(state) {
  fs.writeFileSync(statePath, JSON.stringify(state, null, 2));
}

async function waitHealthy(http, timeoutMs) {
  const deadline = Date.now() + (timeoutMs || 60000);
  for (;;) {
    try {
      const res = await fetch(`${scheme}://${http}/readyz`);
      if (res.ok) return;
    } catch (_) { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`server at ${http} never became ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// Starts server `name` of the state (its ports, its log) and records its pid.
async function startServer(state, name) {
  const s = state.servers[name];
  const log = fs.openSync(path.join(runDir, `${name}.log`), "a");
  const child = spawn(bin, [
    "serve", "--database-url", state.databaseUrl,
    "--grpc-addr", s.grpc, "--http-addr", s.http,
    "--detect-interval", "1s", "--rollup-interval", "200ms", "--watch-heartbeat", "2s",
    "--data-dir", path.join(runDir, name),
    ...(state.tls ? ["--http-tls-cert", state.tls.cert, "--http-tls-key", state.tls.key] : []),
  ], { stdio: ["ignore", log, log], detached: false, env: { ...process.env, RUST_LOG: "info" } });
  child.unref();
  s.pid = child.pid;
  writeState(state);
  await waitHealthy(s.http);
}

// Stops server `name` with SIGTERM and waits until its port is free.
async function stopServer(state, name) {
  const s = state.servers[name];
  try { process.kill(s.pid, "SIGTERM"); } catch (_) { return; }
  const deadline = Date.now() + 30000;
  for (;;) {
    try { process.kill(s.pid, 0); } catch (_) { return; }
    if (Date.now() > deadline) { process.kill(s.pid, "SIGKILL"); return; }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function keyOf(output) {
  const m = output.match(/pls_[0-9a-f]+/);
  if (!m) throw new Error("no key in: " + output);
  return m[0];
}

async function setUp() {
  fs.rmSync(runDir, { recursive: true, force: true });
  fs.mkdirSync(runDir, { recursive: true });
  const admin = process.env.PULSYON_TEST_DATABASE_URL || "postgres://postgres:postgres@127.0.0.1:5432/postgres";
  const dbName = `pulsyon_test_web_${process.pid}`;
  execFileSync("psql", [admin, "-qc", `CREATE DATABASE ${dbName}`]);
  const databaseUrl = admin.replace(/\/[^/]*$/, "/" + dbName);
  const state = { admin, dbName, databaseUrl, password: PASSWORD, servers: {}, keys: {}, scheme };
  if (tls) {
    const certs = path.join(runDir, "certs");
    execFileSync(path.join(root, "scripts", "make-demo-certs.sh"), [certs], { stdio: "ignore" });
    state.tls = { cert: path.join(certs, "server.pem"), key: path.join(certs, "server.key") };
  }
  writeState(state);
  cli(["migrate", "--database-url", databaseUrl]);
  for (const tenant of ["acme", "globex"]) {
    state.keys[tenant] = keyOf(cli(["tenant", "create", tenant, "--database-url", databaseUrl]));
  }
  const users = [["acme", "viewer", "vera"], ["acme", "responder", "rob"], ["acme", "viewer", "tess"], ["globex", "responder", "gus"],
    ["acme", "admin", "ada"]];
  for (const [tenant, role, name] of users) {
    cli(["user", "create", "--tenant", tenant, "--role", role, "--password-stdin", name, "--database-url", databaseUrl], PASSWORD);
  }
  for (const name of ["main", "other"]) {
    state.servers[name] = { grpc: `127.0.0.1:${await freePort()}`, http: `127.0.0.1:${await freePort()}` };
  }
  writeState(state);
  await startServer(state, "main");
  await startServer(state, "other");
  // An hour and a quarter of healthy history for three services of acme,
  // one of globex, through the ingest API.
  const seed = (tenant, services, seedNo) => execFileSync(seedBin, ["--url", `http://${state.servers.main.grpc}`,
    "--api-key", state.keys[tenant], "--days", "0.05", "--services", String(services), "--rate", "15",
    "--incidents", "false", "--seed", String(seedNo)], { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
  seed("acme", 3, 1);
  return state;
}

async function tearDown() {
  let state;
  try { state = readState(); } catch (_) { return; }
  for (const name of Object.keys(state.servers)) await stopServer(state, name);
  try {
    execFileSync("psql", [state.admin, "-qc", `DROP DATABASE IF EXISTS ${state.dbName} WITH (FORCE)`]);
  } catch (_) { /* left for scripts/test.sh to drop */ }
}

module.exports = { setUp, tearDown, readState, writeState, startServer, stopServer, root, runDir, tls };
