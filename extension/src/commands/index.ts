/** Registers every `kat.*` command of package.json. */
import * as vscode from "vscode";
import { Commands } from "../common/constants";
import { acceptCandidate, rejectCandidate, reviewCandidate, reviewCandidateInline } from "./candidates";
import { fixIssue } from "./fixIssue";
import { cancelRun, refreshRuns, setApiKey } from "./run";
import type { Services } from "./services";

export function registerCommands(services: Services): vscode.Disposable[] {
  const { inline } = services;
  const hunkId = (value: unknown) => (typeof value === "number" ? value : undefined);
  const uriArg = (value: unknown) => (typeof value === "string" ? value : undefined);
  const handlers: Record<string, (...args: unknown[]) => unknown> = {
    [Commands.fixIssue]: (arg) => fixIssue(services, arg),
    [Commands.reviewCandidate]: (arg) => reviewCandidate(services, arg),
    [Commands.reviewCandidateInline]: (arg) => reviewCandidateInline(services, arg),
    [Commands.acceptCandidate]: (arg) => acceptCandidate(services, arg),
    [Commands.rejectCandidate]: (arg) => rejectCandidate(services, arg),
    [Commands.cancelRun]: (arg) => cancelRun(services, arg),
    [Commands.refreshRuns]: () => refreshRuns(services),
    [Commands.setApiKey]: () => setApiKey(services),
    [Commands.showOutput]: () => services.output.show(),
    [Commands.restartServer]: () => services.server.restart("requested by the user"),
    [Commands.acceptHunk]: (uri, id) => inline.resolve("accept", uriArg(uri), hunkId(id)),
    [Commands.rejectHunk]: (uri, id) => inline.resolve("reject", uriArg(uri), hunkId(id)),
    [Commands.acceptAllHunks]: (uri) => inline.resolveAll("accept", uriArg(uri)),
    [Commands.rejectAllHunks]: (uri) => inline.resolveAll("reject", uriArg(uri)),
  };
  return Object.entries(handlers).map(([id, handler]) => vscode.commands.registerCommand(id, handler));
}
