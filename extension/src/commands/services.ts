/** The parts every command works with, built once in extension.ts. */
import type * as vscode from "vscode";
import type { KatApi } from "../common/api";
import type { KatServer } from "../common/server";
import type { CandidateContentProvider, Locate } from "../review/diff";
import type { InlineReviewController } from "../review/inline";
import type { InFlight } from "../state/requests";
import type { RunStore } from "../state/runs";

export interface Services {
  context: vscode.ExtensionContext;
  output: vscode.LogOutputChannel;
  server: KatServer;
  api: KatApi;
  store: RunStore;
  inflight: InFlight;
  diffs: CandidateContentProvider;
  inline: InlineReviewController;
  locate: Locate;
}
