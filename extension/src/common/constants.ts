/** Names shared by package.json and the code: command ids, view ids, the server's protocol. */

export const CONFIG_SECTION = "kat";
export const OUTPUT_NAME = "KAT";
export const VIEW_ID = "kat.candidates";
export const CANDIDATE_SCHEME = "kat-candidate";
export const SECRET_API_KEY = "kat.apiKey";
export const INLINE_CONTEXT_KEY = "kat.inlineReviewActive";

/** The extension's own UI commands; they must never equal a server command (`kat.lsp.*`). */
export const Commands = {
  fixIssue: "kat.fixIssue",
  reviewCandidate: "kat.reviewCandidate",
  reviewCandidateInline: "kat.reviewCandidateInline",
  acceptCandidate: "kat.acceptCandidate",
  rejectCandidate: "kat.rejectCandidate",
  cancelRun: "kat.cancelRun",
  setApiKey: "kat.setApiKey",
  showOutput: "kat.showOutput",
  restartServer: "kat.restartServer",
  refreshRuns: "kat.refreshRuns",
  acceptHunk: "kat.inline.acceptHunk",
  rejectHunk: "kat.inline.rejectHunk",
  acceptAllHunks: "kat.inline.acceptAll",
  rejectAllHunks: "kat.inline.rejectAll",
} as const;

/** Commands served by `kat-lsp serve` (DESIGN.md §4), sent as `workspace/executeCommand`. */
export const ServerCommands = {
  fixIssue: "kat.lsp.fixIssue",
  applyCandidate: "kat.lsp.applyCandidate",
  cancel: "kat.lsp.cancel",
  listRuns: "kat.lsp.listRuns",
  candidateDiff: "kat.lsp.candidateDiff",
  reviewCandidate: "kat.lsp.reviewCandidate",
} as const;

export const FIX_ISSUE_REQUEST = "kat/fixIssue";
export const RUN_UPDATE_NOTIFICATION = "kat/runUpdate";

/** Settings whose change needs a new server process (the rest go by didChangeConfiguration). */
export const RESTART_SETTINGS = ["kat.serverCommand"] as const;
export const RESTART_DEBOUNCE_MS = 500;
