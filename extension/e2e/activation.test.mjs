// The extension on its own in real VS Code: it activates, lists its commands, shows the
// welcome view; without kat.serverCommand it falls back to python3 and, when that python
// lacks kat_lsp, offers to install it; a changed kat.serverCommand restarts the server.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, test } from "node:test";
import { PYTHON } from "./fixtures.mjs";
import { VSCode, waitFor } from "./harness.mjs";

let vscode;
let workspace;

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), "kat-e2e-ws-"));
  writeFileSync(join(workspace, "app.py"), "def add(a, b):\n    return a - b\n");
  // A python3 first on PATH that sees no site-packages: kat_lsp is "not installed" there.
  const bin = join(workspace, ".bin");
  mkdirSync(bin);
  const python = execFileSync(PYTHON, ["-c", "import sys; print(sys.executable)"], {
    encoding: "utf8",
  }).trim();
  writeFileSync(join(bin, "python3"), `#!/bin/sh\nexec ${python} -I -S "$@"\n`);
  chmodSync(join(bin, "python3"), 0o755);
  vscode = await VSCode.start({ name: "activation", workspace, pathPrefix: bin });
});

afterEach(async (t) => {
  await vscode?.screenshot(`activation-${t.name.replace(/\W+/g, "-")}.png`).catch(() => {});
});

after(async () => {
  await vscode?.stop();
  rmSync(workspace, { recursive: true, force: true });
});

test("the KAT Candidates view shows its welcome text with a Fix This Issue button", async () => {
  await vscode.runCommand("KAT: Focus on KAT Candidates View");
  const welcome = vscode.page.locator(".welcome-view-content", { hasText: "No KAT runs yet" });
  await welcome.waitFor({ timeout: 30_000 });
  assert.equal(await welcome.locator(".monaco-button", { hasText: "Fix This Issue" }).count(), 1);
  await vscode.screenshot("welcome.png");
});

test("the palette lists the KAT commands once the extension is active", async () => {
  const titles = await vscode.paletteTitles("KAT:", "KAT: Fix This Issue");
  for (const title of [
    "KAT: Fix This Issue",
    "KAT: Review Candidate",
    "KAT: Review Candidate Inline",
    "KAT: Accept Candidate",
    "KAT: Reject Candidate",
    "KAT: Cancel Run",
    "KAT: Set API Key",
    "KAT: Show Output",
  ]) {
    assert.ok(titles.includes(title), `${title} is not in the palette: ${titles.join(", ")}`);
  }
  // Hunk commands appear only during an inline review.
  assert.ok(!titles.includes("KAT: Accept Hunk"), "KAT: Accept Hunk is listed outside an inline review");
});

/** Clicks `button` on the notification that says `text` (a toast, or in the notification center). */
async function clickNotificationButton(text, button) {
  await vscode.notificationText(text);
  const toast = vscode.notification(text);
  const holder = (await toast.isVisible())
    ? toast
    : vscode.page.locator(".notifications-center .notification-list-item", { hasText: text }).first();
  await holder.locator(".monaco-button", { hasText: button }).click();
}

test("python3 without kat_lsp: a notification offers to install it, from PyPI or a checkout", async () => {
  const text = await vscode.notificationText("The kat-lsp package is not installed in python3");
  assert.match(text, /set kat\.serverCommand to a kat-lsp installed elsewhere/);
  await vscode.screenshot("not-installed.png");
  await clickNotificationButton("The kat-lsp package is not installed", "Install");
  const rows = vscode.page.locator(".quick-input-list .monaco-list-row");
  await rows.filter({ hasText: "From PyPI" }).filter({ hasText: "pip install kat-lsp" }).waitFor();
  await rows.filter({ hasText: "From a folder or wheel" }).waitFor();
  await vscode.page.keyboard.press("Escape");
});

test("KAT: Restart Server checks again, and Open Docs shows the extension's README", async () => {
  await vscode.runCommand("KAT: Restart Server");
  await clickNotificationButton("The kat-lsp package is not installed", "Open Docs");
  await vscode.page
    .locator(".tabs-container .tab", { hasText: /Preview readme\.md/i })
    .waitFor({ timeout: 20_000 });
  const preview = vscode.page.frameLocator("iframe.webview.ready").frameLocator("iframe#active-frame");
  await preview.locator("h1", { hasText: "KAT for VS Code" }).waitFor({ timeout: 30_000 });
  await preview.getByText("pip install kat-lsp").first().waitFor();
});

test("a new kat.serverCommand restarts the server; one that fails is reported once", async () => {
  vscode.setSettings({ "kat.serverCommand": ["false"] });
  const text = await vscode.notificationText("KAT could not start its language server");
  assert.match(text, /false did not start/);
  const item = vscode.page.locator(".part.statusbar .statusbar-item", { hasText: "KAT" }).first();
  await waitFor("the KAT status bar item in error", async () =>
    (await item.innerHTML()).includes("codicon-error"),
  );
  await vscode.runCommand("Notifications: Show Notifications");
  const center = vscode.page.locator(".notifications-center .notification-list-item");
  await center.first().waitFor();
  const texts = await center.allInnerTexts();
  assert.ok(texts.some((t) => t.includes("KAT could not start its language server")));
  assert.deepEqual(
    texts.filter((t) => /KAT client|Client KAT/.test(t)),
    [],
    "vscode-languageclient's own pop-ups showed",
  );
});
