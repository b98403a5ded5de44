// Phase 2 in real VS Code: the packaged extension runs the real `kat-lsp serve` against a
// scripted model on a buggy git repository; a person's path through fix, review, accept,
// inline review and cancel, checked on disk.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, afterEach, before, test } from "node:test";
import { VSCode, waitFor } from "./harness.mjs";
import {
  BUGGY,
  createWorkspace,
  FIXED,
  git,
  ISSUE,
  modelRequests,
  MEAN_ONLY,
  PYTHON,
  readCalc,
  SLOW_ISSUE,
  startModel,
} from "./fixtures.mjs";

let vscode;
let workspace;
let model;
let dir;

before(async () => {
  dir = join(process.env.KAT_E2E_RUN_DIR ?? "/tmp", "fix-world");
  mkdirSync(dir, { recursive: true });
  workspace = createWorkspace();
  model = await startModel(dir);
  const python = execFileSync(PYTHON, ["-c", "import sys; print(sys.executable)"], {
    encoding: "utf8",
  }).trim();
  vscode = await VSCode.start({
    name: "fix",
    workspace,
    settings: {
      "kat.serverCommand": [python, "-m", "kat_lsp", "serve"],
      "kat.baseUrl": model.baseUrl,
      "kat.model": "scripted",
      "kat.samples": 3,
    },
    serverEnv: {
      OPENAI_API_KEY: "e2e-key",
      KAT_CACHE_DIR: join(dir, "cache"),
      KAT_STATE_DIR: join(dir, "state"),
    },
  });
});

afterEach(async (t) => {
  await vscode?.screenshot(`fix-${t.name.replace(/\W+/g, "-")}.png`).catch(() => {});
});

after(async () => {
  await vscode?.stop();
  model?.stop();
  if (workspace) {
    rmSync(workspace, { recursive: true, force: true });
  }
});

async function diskShows(expected, what) {
  await waitFor(what, () => readCalc(workspace) === expected, 30_000);
}

test("Fix This Issue runs to a notification with the candidates, shown in the view", async () => {
  // The key from the secret storage wins over OPENAI_API_KEY of the environment.
  await vscode.runCommand("KAT: Set API Key");
  await vscode.answerInput("sk-from-secret-storage");
  await vscode.notificationText("API key saved");
  await vscode.runCommand("KAT: Fix This Issue");
  await vscode.answerInput(ISSUE);
  const text = await vscode.notificationText("KAT found", 240_000);
  assert.match(text, /KAT found 2 candidates/);
  assert.match(text, /Best: #1 · calc\.py \(score 9 · tests 1\/1 · 2 samples agree\)/);
  const rows = await vscode.candidateRows();
  await rows.filter({ hasText: "mean() divides" }).first().waitFor({ timeout: 10_000 });
  await rows
    .filter({ hasText: "#1 · calc.py" })
    .filter({ hasText: "score 9 · tests 1/1 · 2 samples agree" })
    .waitFor();
  await rows
    .filter({ hasText: "#2 · calc.py" })
    .filter({ hasText: "score 6 · tests 1/1 · 1 sample" })
    .waitFor();
  assert.equal(readCalc(workspace), BUGGY, "a run must not touch the user's files");
  const keys = new Set(modelRequests(dir).map((r) => r.headers.authorization));
  assert.deepEqual([...keys], ["Bearer sk-from-secret-storage"]);
  await vscode.screenshot("candidates-view.png");
});

test("the lightbulb of the changed file lists the ranked candidates", async () => {
  await vscode.openFile("calc.py");
  await vscode.runCommand("Quick Fix...");
  const items = vscode.page.locator(".action-widget .monaco-list-row");
  await items
    .filter({ hasText: "KAT #1 · score 9.0 · tests 1/1 · 2 samples agree" })
    .waitFor({ timeout: 20_000 });
  await items.filter({ hasText: "KAT #2 · score 6.0 · tests 1/1 · 1 sample" }).waitFor();
  await vscode.screenshot("lightbulb.png");
  await vscode.page.keyboard.press("Escape");
});

test("Review Candidate opens the candidate's diff", async () => {
  await vscode.runCommand("KAT: Review Candidate");
  await vscode.pick("#1 · calc.py");
  const diff = vscode.page.locator(".monaco-diff-editor");
  await diff.waitFor({ timeout: 20_000 });
  await diff.locator(".editor.modified", { hasText: "return high - low" }).waitFor();
  await diff.locator(".editor.original", { hasText: "return low - high" }).waitFor();
  await vscode.page.locator(".tabs-container .tab.active", { hasText: "calc.py (KAT #1)" }).waitFor();
  await vscode.screenshot("review-diff.png");
});

test("Accept Candidate on rank 1 fixes the file on disk", async () => {
  await vscode.runCommand("KAT: Accept Candidate");
  await vscode.pick("#1 · calc.py");
  await vscode.notificationText("KAT applied #1 · calc.py", 30_000);
  await diskShows(FIXED, "calc.py fixed and saved");
});

test("inline review: accepting the first hunk and rejecting the second leaves only the first", async () => {
  git(workspace, "checkout", "--", "calc.py");
  await vscode.openFile("calc.py");
  await vscode.runCommand("File: Revert File");
  await vscode.page.locator(".monaco-editor .view-line", { hasText: "return low - high" }).first().waitFor();
  await vscode.runCommand("KAT: Review Candidate Inline");
  await vscode.pick("#1 · calc.py");
  const lens = (title) =>
    vscode.page.locator(".codelens-decoration a", { hasText: new RegExp(`^${title}$`) });
  await lens("Accept All").waitFor({ timeout: 20_000 });
  assert.equal(await lens("Accept").count(), 2);
  await vscode.screenshot("inline-review.png");
  await lens("Accept").first().click();
  await waitFor("one hunk left", async () => (await lens("Reject").count()) === 1);
  await lens("Reject").first().click();
  await diskShows(MEAN_ONLY, "calc.py with the first hunk only, saved");
  await waitFor("the review's lenses to go", async () => (await lens("Accept All").count()) === 0);
});

test("cancelling a run from its notification leaves the files as they were", async () => {
  const before = readCalc(workspace);
  const status = git(workspace, "status", "--porcelain");
  await vscode.runCommand("KAT: Fix This Issue");
  await vscode.answerInput(SLOW_ISSUE);
  const progress = vscode.notification("KAT: SLOW");
  await progress.waitFor({ timeout: 30_000 });
  await waitFor(
    "the run to reach generation",
    async () => /generate/.test(await progress.innerText()),
    60_000,
  );
  await vscode.screenshot("progress.png");
  await progress.locator(".monaco-button", { hasText: "Cancel" }).click();
  await vscode.notificationText("KAT run cancelled", 90_000);
  assert.equal(readCalc(workspace), before);
  assert.equal(git(workspace, "status", "--porcelain"), status);
  await vscode.page.locator(".activitybar .action-item a[aria-label^='KAT']").click();
  await vscode.page
    .locator(".monaco-list-row", { hasText: "cancelled" })
    .first()
    .waitFor({ timeout: 20_000 });
});

test("KAT: fix this problem on a diagnostic starts a run through the extension's progress", async () => {
  await vscode.openFile("broken.json");
  await vscode.page.locator(".part.statusbar", { hasText: /1/ }).locator(".codicon-error").first().waitFor();
  await vscode.runCommand("Go to Next Problem (Error, Warning, Info)");
  await vscode.runCommand("Quick Fix...");
  const item = vscode.page.locator(".action-widget .monaco-list-row", { hasText: "KAT: fix this problem" });
  await item.waitFor({ timeout: 20_000 });
  await vscode.screenshot("fix-this-problem.png");
  await item.click();
  await vscode.notification("KAT: Fix the problem the editor reports").waitFor({ timeout: 30_000 });
  const text = await vscode.notificationText('candidates for "Fix the problem the editor reports', 240_000);
  assert.match(text, /KAT found \d candidates? for "Fix the problem the editor reports/);
});
