// Real VS Code for the e2e tests: code-server (in its own process group) with the packaged
// .vsix installed, driven by headless Chromium through playwright-core.
// Environment (set by scripts/e2e.sh): KAT_E2E_CODE_SERVER, KAT_E2E_NODE_DIR, KAT_E2E_VSIX,
// KAT_E2E_RUN_DIR (scratch; the script ends leftover process groups listed in RUN_DIR/pgids),
// KAT_E2E_ARTIFACTS (screenshots).
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium } from "playwright-core";

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the e2e tests through scripts/e2e.sh`);
  }
  return value;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function waitFor(what, check, timeoutMs = 30_000, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) {
        return value;
      }
    } catch (error) {
      last = error;
    }
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

const BASE_SETTINGS = {
  "workbench.startupEditor": "none",
  "chat.disableAIFeatures": true,
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "workbench.tips.enabled": false,
  "workbench.enableExperiments": false,
  "workbench.secondarySideBar.defaultVisibility": "hidden",
  "telemetry.telemetryLevel": "off",
  "security.workspace.trust.enabled": false,
  "git.enabled": false,
  "files.autoSave": "off",
  "diffEditor.useInlineViewWhenSpaceIsLimited": false,
};

/** User settings; also as the machine's, where machine-scoped ones (kat.serverCommand) count. */
function writeSettings(dataDir, settings) {
  const text = JSON.stringify({ ...BASE_SETTINGS, ...settings }, null, 2);
  for (const folder of ["User", "Machine"]) {
    mkdirSync(join(dataDir, folder), { recursive: true });
    writeFileSync(join(dataDir, folder, "settings.json"), text);
  }
}

export class VSCode {
  /**
   * Starts code-server on `workspace` with user `settings` and opens it in Chromium.
   * `serverEnv` is added to code-server's environment (the extension host and so the
   * KAT server inherit it).
   */
  static async start({ name, workspace, settings = {}, serverEnv = {}, pathPrefix }) {
    const codeServer = env("KAT_E2E_CODE_SERVER");
    const runDir = join(env("KAT_E2E_RUN_DIR"), name);
    const dirs = {
      extensions: join(runDir, "extensions"),
      data: join(runDir, "data"),
      profile: join(runDir, "chromium"),
      xdg: join(runDir, "xdg"),
    };
    Object.values(dirs).forEach((d) => mkdirSync(d, { recursive: true }));
    const processEnv = {
      ...process.env,
      PATH: [pathPrefix, env("KAT_E2E_NODE_DIR"), process.env.PATH].filter(Boolean).join(":"),
      XDG_CONFIG_HOME: join(dirs.xdg, "config"),
      XDG_DATA_HOME: join(dirs.xdg, "data"),
      XDG_CACHE_HOME: join(dirs.xdg, "cache"),
      XDG_STATE_HOME: join(dirs.xdg, "state"),
      // Else the extension host takes the login shell's environment (PATH among it).
      VSCODE_CLI: "1",
      ...serverEnv,
    };
    const common = ["--extensions-dir", dirs.extensions, "--user-data-dir", dirs.data];
    const install = spawnSync(codeServer, ["--install-extension", env("KAT_E2E_VSIX"), ...common], {
      env: processEnv,
      encoding: "utf8",
    });
    if (install.status !== 0) {
      throw new Error(`installing the .vsix failed:\n${install.stdout}\n${install.stderr}`);
    }
    writeSettings(dirs.data, settings);
    const port = await freePort();
    const config = join(runDir, "config.yaml");
    writeFileSync(config, `bind-addr: 127.0.0.1:${port}\nauth: none\ncert: false\n`);
    const log = openSync(join(runDir, "code-server.log"), "a");
    const child = spawn(
      codeServer,
      [
        "--auth",
        "none",
        "--bind-addr",
        `127.0.0.1:${port}`,
        "--disable-telemetry",
        "--disable-update-check",
        "--disable-getting-started-override",
        "--disable-workspace-trust",
        "--reconnection-grace-time",
        "10",
        ...common,
        "--config",
        config,
        workspace,
      ],
      { env: processEnv, detached: true, stdio: ["ignore", log, log] },
    );
    appendFileSync(join(env("KAT_E2E_RUN_DIR"), "pgids"), `${child.pid}\n`);
    const vscode = new VSCode(name, child, port, runDir);
    try {
      await waitFor(
        "code-server's /healthz",
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok,
        60_000,
      );
      vscode.context = await chromium.launchPersistentContext(dirs.profile, {
        executablePath: process.env.KAT_E2E_CHROMIUM ?? "/usr/bin/chromium",
        headless: true,
        viewport: { width: 1400, height: 900 },
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
      vscode.page = vscode.context.pages()[0] ?? (await vscode.context.newPage());
      await vscode.page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
      await vscode.page.locator(".monaco-workbench").waitFor({ timeout: 60_000 });
      await vscode.page.locator(".part.statusbar").waitFor({ timeout: 60_000 });
      await vscode.focusWorkbench();
      await vscode.runCommand("View: Hide Secondary Side Bar", { timeoutMs: 10_000 }).catch(() => {});
    } catch (error) {
      await vscode.stop();
      throw error;
    }
    return vscode;
  }

  constructor(name, child, port, runDir) {
    this.name = name;
    this.child = child;
    this.port = port;
    this.runDir = runDir;
    this.context = undefined;
    this.page = undefined;
  }

  /** Replaces the user (and machine) settings while VS Code runs; it notices the change. */
  setSettings(settings) {
    writeSettings(join(this.runDir, "data"), settings);
  }

  /** Runs a command by its palette title; reopens the palette until the command is registered. */
  async runCommand(title, { timeoutMs = 60_000 } = {}) {
    const page = this.page;
    await waitFor(
      `the command "${title}" in the palette`,
      async () => {
        const input = page.locator(".quick-input-widget input");
        if (await input.isVisible()) {
          await page.keyboard.press("Escape"); // only then: Escape elsewhere hides the notifications
        }
        await page.keyboard.press("F1");
        if (!(await input.isVisible().catch(() => false))) {
          await this.focusWorkbench();
          await page.keyboard.press("F1");
        }
        await input.waitFor({ timeout: 5000 });
        await input.fill(`>${title}`);
        const row = page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
        try {
          await row.waitFor({ timeout: 3000 });
        } catch {
          return false;
        }
        const label = (await row.locator(".label-name").first().textContent())?.trim();
        if (label !== title) {
          return false;
        }
        await input.press("Enter");
        return true;
      },
      timeoutMs,
      500,
    );
  }

  /** Clicks an empty spot of the workbench so that keys reach it. */
  async focusWorkbench() {
    await this.page
      .locator(".part.statusbar")
      .click({ position: { x: 5, y: 5 } })
      .catch(() => {});
  }

  /** The titles the palette lists for `query`, once it lists `expected` (retrying like runCommand). */
  async paletteTitles(query, expected) {
    const page = this.page;
    const input = page.locator(".quick-input-widget input");
    const titles = await waitFor(`"${expected}" in the palette`, async () => {
      if (await input.isVisible()) {
        await page.keyboard.press("Escape");
      }
      await page.keyboard.press("F1");
      await input.waitFor({ timeout: 5000 });
      await input.fill(`>${query}`);
      const row = page.locator(".quick-input-list .monaco-list-row", { hasText: expected }).first();
      await row.waitFor({ timeout: 3000 }).catch(() => {});
      const labels = await page.locator(".quick-input-list .monaco-list-row .label-name").allTextContents();
      return labels.some((t) => t.trim() === expected) && labels.map((t) => t.trim());
    });
    await page.keyboard.press("Escape");
    return titles;
  }

  /** Types into the open input box and presses Enter. */
  async answerInput(text) {
    const input = this.page.locator(".quick-input-widget input");
    await input.waitFor({ timeout: 10_000 });
    await input.fill(text);
    await input.press("Enter");
  }

  /** Picks the quick pick row whose label contains `text`. */
  async pick(text) {
    const row = this.page.locator(".quick-input-list .monaco-list-row", { hasText: text }).first();
    await row.waitFor({ timeout: 15_000 });
    await row.click();
  }

  /** The notification toast that contains `text`. */
  notification(text) {
    return this.page.locator(".notifications-toasts .notification-toast", { hasText: text }).first();
  }

  /**
   * The text of the notification containing `text`: a toast, or (when Escape hid the
   * toasts) an entry of the notification center.
   */
  async notificationText(text, timeoutMs = 60_000) {
    const toast = this.notification(text);
    const entry = this.page
      .locator(".notifications-center .notification-list-item", { hasText: text })
      .first();
    const started = Date.now();
    return waitFor(
      `a notification saying "${text}"`,
      async () => {
        if (await toast.isVisible()) {
          return toast.innerText();
        }
        if (await entry.isVisible()) {
          return entry.innerText();
        }
        const center = this.page.locator(".notifications-center");
        if (Date.now() - started > 5000 && !(await center.isVisible())) {
          await this.runCommand("Notifications: Show Notifications", { timeoutMs: 10_000 });
        }
        return false;
      },
      timeoutMs,
      500,
    );
  }

  /** Shows the KAT Candidates view (its own container in the activity bar); returns its rows. */
  async candidateRows() {
    await this.runCommand("KAT: Focus on KAT Candidates View");
    return this.page.locator(".part.sidebar .monaco-list-row");
  }

  /** Opens a workspace file in the editor by Quick Open. */
  async openFile(name) {
    const input = this.page.locator(".quick-input-widget input");
    if (await input.isVisible()) {
      await this.page.keyboard.press("Escape");
    }
    await this.page.keyboard.press("Control+P");
    await input.waitFor({ timeout: 10_000 });
    await input.fill(name);
    await this.page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first().waitFor();
    await input.press("Enter");
    await this.page.locator(".tabs-container .tab.active", { hasText: name }).waitFor({ timeout: 10_000 });
  }

  async screenshot(file) {
    const dir = env("KAT_E2E_ARTIFACTS");
    mkdirSync(dir, { recursive: true });
    const path = join(dir, file);
    await this.page.screenshot({ path });
    return path;
  }

  /** Closes the browser and ends code-server's whole process group. */
  async stop() {
    await this.context?.close().catch(() => {});
    const pgid = this.child.pid;
    const alive = () => {
      try {
        process.kill(-pgid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      process.kill(-pgid, "SIGTERM");
    } catch {
      return;
    }
    for (let i = 0; i < 20 && alive(); i++) {
      await sleep(250);
    }
    if (alive()) {
      process.kill(-pgid, "SIGKILL");
    }
  }
}
