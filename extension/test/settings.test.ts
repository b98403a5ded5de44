import { describe, expect, it } from "vitest";
import {
  readSettings,
  resolveApiKey,
  resolveServerCommand,
  serverEnvironment,
  serverSettings,
  type SettingsSource,
} from "../src/common/settings";

function source(values: Record<string, unknown>): SettingsSource {
  return { get: <T>(key: string) => values[key] as T | undefined };
}

describe("readSettings", () => {
  it("reads the kat settings and leaves unset or invalid values out", () => {
    const settings = readSettings(
      source({
        model: "  qwen-coder ",
        baseUrl: "",
        samples: 6,
        rounds: 0,
        topK: 2.5,
        testCommand: "pytest -q",
        sandbox: "chroot",
        serverCommand: ["/venv/bin/kat-lsp", "", "serve", 3],
      }),
    );
    expect(settings).toEqual({
      serverCommand: ["/venv/bin/kat-lsp", "serve"],
      model: "qwen-coder",
      baseUrl: undefined,
      samples: 6,
      rounds: undefined,
      topK: undefined,
      testCommand: "pytest -q",
      sandbox: undefined,
      saveAfterAccept: true,
    });
  });

  it("keeps saveAfterAccept false when the user turned it off", () => {
    expect(readSettings(source({ saveAfterAccept: false })).saveAfterAccept).toBe(false);
  });
});

describe("serverSettings", () => {
  it("sends only what is set, with the camelCase names of the protocol and the API key", () => {
    const settings = readSettings(source({ model: "m", samples: 4, sandbox: "none", serverCommand: ["x"] }));
    expect(serverSettings(settings, "sk-1")).toEqual({
      model: "m",
      samples: 4,
      sandbox: "none",
      apiKey: "sk-1",
    });
  });

  it("sends nothing when nothing is set, so the server's own configuration stays in force", () => {
    expect(serverSettings(readSettings(source({})))).toEqual({});
  });
});

describe("resolveServerCommand", () => {
  it("prefers kat.serverCommand", () => {
    const settings = readSettings(
      source({ serverCommand: ["/venv/bin/kat-lsp", "serve", "--log", "debug"] }),
    );
    expect(resolveServerCommand(settings, "/usr/bin/python3.12")).toEqual({
      command: "/venv/bin/kat-lsp",
      args: ["serve", "--log", "debug"],
      source: "setting",
    });
  });

  it("uses the Python extension's interpreter next", () => {
    const command = resolveServerCommand(readSettings(source({})), "/proj/.venv/bin/python");
    expect(command).toEqual({
      command: "/proj/.venv/bin/python",
      args: ["-m", "kat_lsp", "serve"],
      source: "python-extension",
      python: "/proj/.venv/bin/python",
    });
  });

  it("falls back to python3 -m kat_lsp serve", () => {
    const command = resolveServerCommand(readSettings(source({ serverCommand: [] })), undefined);
    expect([command.command, ...command.args]).toEqual(["python3", "-m", "kat_lsp", "serve"]);
    expect(command.source).toBe("python3");
  });
});

describe("the API key", () => {
  it("comes from the secret storage before the environment", () => {
    expect(resolveApiKey("from-secrets", { OPENAI_API_KEY: "from-env" })).toBe("from-secrets");
    expect(resolveApiKey(undefined, { OPENAI_API_KEY: "from-env" })).toBe("from-env");
    expect(resolveApiKey(undefined, {})).toBeUndefined();
  });

  it("reaches the server's environment as OPENAI_API_KEY without changing ours", () => {
    const env = { PATH: "/bin", OPENAI_API_KEY: "old" };
    expect(serverEnvironment("new", env)).toEqual({ PATH: "/bin", OPENAI_API_KEY: "new" });
    expect(env.OPENAI_API_KEY).toBe("old");
    expect(serverEnvironment(undefined, env).OPENAI_API_KEY).toBe("old");
  });
});
