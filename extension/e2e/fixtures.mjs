// The e2e world: a small buggy git repository, a scripted OpenAI-compatible model
// (kat_lsp.model.scripted) and the python that runs `kat-lsp serve`.
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const PYTHON = process.env.KAT_E2E_PYTHON ?? "python3";

export const BUGGY = `"""Small statistics helpers."""


def mean(values):
    """The arithmetic mean of a non-empty list."""
    return sum(values) / (len(values) + 1)


def spread(values):
    """The largest value minus the smallest one."""
    ordered = sorted(values)
    low = ordered[0]
    high = ordered[-1]
    return low - high
`;
const MEAN_BUG = "    return sum(values) / (len(values) + 1)";
const MEAN_FIX = "    return sum(values) / len(values)";
const SPREAD_BUG = "    return low - high";
const SPREAD_FIX = "    return high - low";
export const FIXED = BUGGY.replace(MEAN_BUG, MEAN_FIX).replace(SPREAD_BUG, SPREAD_FIX);
export const MEAN_ONLY = BUGGY.replace(MEAN_BUG, MEAN_FIX);
export const ISSUE = "mean() divides by one too many and spread() returns a negative number";
/** An issue the script answers slowly, for the cancel test. */
export const SLOW_ISSUE = "SLOW: spread() of one value should be 0";

function edit(oldStr, newStr) {
  return {
    tool: "str_replace_editor",
    args: { command: "str_replace", path: "calc.py", old_str: oldStr, new_str: newStr },
  };
}

/** Samples 0 and 1 fix both bugs alike; sample 2 fixes them another way; the judge prefers the first. */
export function script() {
  const both = [edit(MEAN_BUG, MEAN_FIX), edit(SPREAD_BUG, SPREAD_FIX), { tool: "submit", args: {} }];
  const other = [
    edit(MEAN_BUG, "    return sum(values) / max(len(values), 1)"),
    edit(SPREAD_BUG, "    return max(values) - min(values)"),
    { tool: "submit", args: {} },
  ];
  const slow = [{ tool: "bash", args: { command: "sleep 1" }, delay: 120 }];
  const test =
    "from calc import mean, spread\nassert mean([2, 4]) == 3, mean([2, 4])\nassert spread([5, 1, 3]) == 4, spread([5, 1, 3])\n";
  const generate = (turns) => ({ match: [{ contains: "SLOW:", turns: slow }], turns });
  return {
    phases: {
      generate: { 0: generate(both), 1: generate(both), default: generate(other) },
      testgen: {
        default: [
          { tool: "str_replace_editor", args: { command: "create", path: "test_issue.py", file_text: test } },
          { tool: "submit", args: { command: "python3 test_issue.py" } },
        ],
      },
      judge: {
        default: {
          match: [
            { contains: "high - low", turns: [{ tool: "score", args: { score: 9, reason: "minimal" } }] },
          ],
          turns: [{ tool: "score", args: { score: 6, reason: "changes behaviour for []" } }],
        },
      },
      reflect: [{ content: "nothing to add" }],
    },
  };
}

export function git(root, ...args) {
  return execFileSync(
    "git",
    ["-C", root, "-c", "user.name=t", "-c", "user.email=t@example.invalid", ...args],
    {
      encoding: "utf8",
    },
  );
}

/** A git repository with the buggy calc.py; `.kat.toml` keeps the run small. */
export function createWorkspace() {
  const root = mkdtempSync(join(tmpdir(), "kat-e2e-calc-"));
  writeFileSync(join(root, "calc.py"), BUGGY);
  // A JSON syntax error: VS Code's JSON support reports it, and KAT offers to fix it.
  writeFileSync(join(root, "broken.json"), '{\n  "name": "calc"\n  "version": 1\n}\n');
  writeFileSync(join(root, ".kat.toml"), "test_samples = 1\nmax_retries = 0\ncommand_timeout = 30\n");
  git(root, "init", "-q", "-b", "main");
  git(root, "add", "-A");
  git(root, "commit", "-qm", "buggy calc");
  return root;
}

export function readCalc(root) {
  return readFileSync(join(root, "calc.py"), "utf8");
}

/** Starts the scripted model server; resolves with its base URL and a stop function. */
export async function startModel(dir) {
  const file = join(dir, "script.json");
  writeFileSync(file, JSON.stringify(script(), null, 2));
  const child = spawn(
    PYTHON,
    ["-m", "kat_lsp.model.scripted", "--script", file, "--port", "0", "--log", join(dir, "model.jsonl")],
    {
      stdio: ["ignore", "pipe", "inherit"],
      detached: true,
    },
  );
  if (process.env.KAT_E2E_RUN_DIR) {
    appendFileSync(join(process.env.KAT_E2E_RUN_DIR, "pgids"), `${child.pid}\n`);
  }
  const [baseUrl] = await new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the scripted model exited with ${code}`)));
    createInterface({ input: child.stdout }).once("line", (line) => resolve([line.trim()]));
  });
  return {
    baseUrl,
    stop: () => {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
    },
  };
}

/** The requests the scripted model answered (its --log). */
export function modelRequests(dir) {
  return readFileSync(join(dir, "model.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}
