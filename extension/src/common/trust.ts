/**
 * Workspace trust, told to the server: `initializationOptions.trustedWorkspace` carries
 * `vscode.workspace.isTrusted` at start, and `kat/didChangeWorkspaceTrust` follows when
 * the user grants trust later. The server then lets the repository's own `.kat.toml` /
 * `[tool.kat]` set what weakens the sandbox or redirects the API key only when trusted
 * (docs/reference/lsp.md#workspace-trust). The `kat.*` settings that do so are
 * `restrictedConfigurations` in package.json: VS Code ignores them in an untrusted
 * folder's `.vscode/settings.json`.
 */

export const TRUST_NOTIFICATION = "kat/didChangeWorkspaceTrust";

export interface TrustSource {
  readonly isTrusted: boolean;
  onDidGrantWorkspaceTrust(listener: () => unknown): { dispose(): void };
}

/** The initialization options with the workspace's trust added. */
export function withTrust<T extends object>(
  options: T,
  source: Pick<TrustSource, "isTrusted">,
): T & { trustedWorkspace: boolean } {
  return { ...options, trustedWorkspace: source.isTrusted === true };
}

/** Sends `kat/didChangeWorkspaceTrust {trusted: true}` whenever the user grants trust. */
export function forwardTrustGrants(
  source: TrustSource,
  send: (method: string, params: { trusted: boolean }) => Promise<void> | void,
): { dispose(): void } {
  return source.onDidGrantWorkspaceTrust(() => send(TRUST_NOTIFICATION, { trusted: true }));
}
