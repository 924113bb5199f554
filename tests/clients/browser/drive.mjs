// Runs presence.html in Debian's Chromium (headless, through playwright-core)
// and prints what its scenario returned as one JSON line on standard output.
//
//   node drive.mjs PAGE_URL CONFIG_JSON
//
// CONFIG_JSON: {"ws": "ws://127.0.0.1:PORT", "domain": "example.com",
//   "alice": {"name": "alice", "password": "..."}, "bob": {...}, "note": "...",
//   "timeout": MILLISECONDS}.  Exit status 0 when the scenario ran to its end,
//   1 otherwise (the JSON says why); the browser's console goes to stderr.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, configText] = process.argv.slice(2);
const config = JSON.parse(configText);
const timeout = config.timeout || 60000;
const profile = mkdtempSync(join(tmpdir(), "slee-chromium-"));

let result = { ok: false, error: "not run" };
let context;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    timeout,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] || await context.newPage();
  page.on("console", message => process.stderr.write(`console.${message.type()}: ${message.text()}\n`));
  page.on("pageerror", error => process.stderr.write(`pageerror: ${error}\n`));
  page.setDefaultTimeout(timeout);
  await page.goto(url);
  await page.waitForFunction(() => window.ready === true);
  result = await page.evaluate(config => window.runScenario(config), config);
} catch (error) {
  result = { ok: false, error: String(error && error.stack || error) };
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(result.ok ? 0 : 1);
