// Phase 1 in real VS Code: the packaged extension activates, its commands are in the
// palette and the KAT Candidates view shows its welcome text.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, test } from "node:test";
import { VSCode, waitFor } from "./harness.mjs";

let vscode;
let workspace;

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), "kat-e2e-ws-"));
  writeFileSync(join(workspace, "app.py"), "def add(a, b):\n    return a - b\n");
  // A server command that exits at once: this test is about the extension, not the server.
  vscode = await VSCode.start({
    name: "activation",
    workspace,
    settings: { "kat.serverCommand": ["false"] },
  });
});

afterEach(async (t) => {
  await vscode?.screenshot(`activation-${t.name.replace(/\W+/g, "-")}.png`).catch(() => {});
});

after(async () => {
  await vscode?.stop();
  rmSync(workspace, { recursive: true, force: true });
});

test("the KAT Candidates view shows its welcome text with a Fix This Issue button", async () => {
  const page = vscode.page;
  await vscode.runCommand("KAT: Focus on KAT Candidates View");
  const welcome = page.locator(".welcome-view-content", { hasText: "No KAT runs yet" });
  await welcome.waitFor({ timeout: 30_000 });
  assert.equal(await welcome.locator(".monaco-button", { hasText: "Fix This Issue" }).count(), 1);
  await vscode.screenshot("welcome.png");
});

test("the palette lists the KAT commands once the extension is active", async () => {
  await vscode.runCommand("KAT: Show Output");
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

test("a server command that fails says so once, in a notification and the status bar", async () => {
  const text = await vscode.notificationText("KAT could not start its language server");
  assert.match(text, /false did not start/);
  const item = vscode.page.locator(".part.statusbar .statusbar-item", { hasText: "KAT" }).first();
  await waitFor("the KAT status bar item in error", async () =>
    (await item.innerHTML()).includes("codicon-error"),
  );
  assert.equal(
    await vscode.page.locator(".notifications-toasts .notification-toast", { hasText: "Client KAT" }).count(),
    0,
  );
});
