import { beforeEach, describe, expect, it } from "vitest";
import * as vscode from "vscode";
import { serverSettings } from "../src/common/settings";
import { TRUST_NOTIFICATION, forwardTrustGrants, withTrust } from "../src/common/trust";
import { workspace } from "./vscode";

const settings = {
  serverCommand: [],
  baseUrl: "http://localhost:8000/v1",
  sandbox: "bwrap" as const,
  saveAfterAccept: true,
};

describe("workspace trust", () => {
  beforeEach(() => {
    workspace.isTrusted = false;
  });

  it("sends isTrusted in the initialization options", () => {
    expect(withTrust(serverSettings(settings, "key"), vscode.workspace)).toEqual({
      baseUrl: "http://localhost:8000/v1",
      apiKey: "key",
      sandbox: "bwrap",
      trustedWorkspace: false,
    });
    workspace.isTrusted = true;
    expect(withTrust({}, vscode.workspace)).toEqual({ trustedWorkspace: true });
  });

  it("tells the server when the user grants trust, until disposed", () => {
    const sent: Array<[string, unknown]> = [];
    const forwarding = forwardTrustGrants(vscode.workspace, (method, params) => {
      sent.push([method, params]);
    });
    expect(sent).toEqual([]);
    workspace.grantTrust();
    expect(sent).toEqual([[TRUST_NOTIFICATION, { trusted: true }]]);
    forwarding.dispose();
    workspace.grantTrust();
    expect(sent).toHaveLength(1);
  });

  it("declares the settings that weaken safety as restricted in untrusted folders", async () => {
    const { readFile } = await import("node:fs/promises");
    const manifest = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8"));
    const untrusted = manifest.capabilities.untrustedWorkspaces;
    expect(untrusted.supported).toBe("limited");
    expect([...untrusted.restrictedConfigurations].sort()).toEqual([
      "kat.baseUrl",
      "kat.model",
      "kat.sandbox",
      "kat.serverCommand",
    ]);
  });
});
