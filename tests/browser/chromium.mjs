// Debian's Chromium for the browser tests, as this machine and CI need it: no sandbox (root),
// no GPU, and none of the background networking that the closed network refuses. A fresh
// profile each time; `close` removes it.

import { createRequire } from "node:module";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "../..");
const tools = process.env.NODE_TOOLS || join(root, ".tools/node");
const puppeteer = createRequire(join(tools, "node_modules/"))("puppeteer-core");

export async function launchChromium() {
  const profile = mkdtempSync(join(tmpdir(), "chromium-profile-"));
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    userDataDir: profile,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
