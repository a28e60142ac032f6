// The dashboard's browser tests: Playwright's runner driving Debian's
// Chromium (never a downloaded browser) against the real server.
"use strict";

const { defineConfig } = require("@playwright/test");

module.exports = defineConfig({
  testDir: __dirname,
  testMatch: /.*\.spec\.js$/,
  globalSetup: require.resolve("./global-setup.js"),
  globalTeardown: require.resolve("./global-teardown.js"),
  workers: 1,
  fullyParallel: false,
  // The TLS (HTTP/2) run retries a failed test once: its resume-after-drop
  // test failed once in five full runs on a loaded machine (the page kept a
  // resolved incident after its server came back), an intermittent cause
  // still open in issue 27's note. Plain HTTP/1.1 runs never retry.
  retries: process.env.PULSYON_WEB_TLS ? 1 : 0,
  timeout: 180000,
  expect: { timeout: 60000 },
  reporter: [["list"]],
  outputDir: require("node:path").join(__dirname, ".run", process.env.PULSYON_WEB_TLS ? "results-tls" : "results"),
  use: {
    browserName: "chromium",
    launchOptions: {
      executablePath: process.env.PULSYON_CHROMIUM || "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    },
    viewport: { width: 1280, height: 900 },
    // The TLS run's demo certificate (scripts/test-web.sh runs both).
    ignoreHTTPSErrors: true,
    trace: "off",
  },
});
