/**
 * The extension's settings: reading `kat.*`, what of it the server gets, and which
 * command starts the server (kat.serverCommand > Python extension's interpreter > python3).
 */

export interface SettingsSource {
  get<T>(key: string): T | undefined;
}

export type SandboxSetting = "bwrap" | "none";

export interface KatSettings {
  serverCommand: string[];
  model?: string;
  baseUrl?: string;
  samples?: number;
  rounds?: number;
  topK?: number;
  testCommand?: string;
  sandbox?: SandboxSetting;
  saveAfterAccept: boolean;
}

/** What `initializationOptions` and `didChangeConfiguration {settings: {kat}}` carry. */
export interface ServerSettings {
  model?: string;
  baseUrl?: string;
  apiKey?: string;
  samples?: number;
  rounds?: number;
  topK?: number;
  testCommand?: string;
  sandbox?: SandboxSetting;
}

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the command came from, for the log and the error messages. */
  source: "setting" | "python-extension" | "python3";
  /** The interpreter, when the command is `<python> -m kat_lsp serve`. */
  python?: string;
}

function text(source: SettingsSource, key: string): string | undefined {
  const value = source.get<unknown>(key);
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}

function positiveInt(source: SettingsSource, key: string): number | undefined {
  const value = source.get<unknown>(key);
  return typeof value === "number" && Number.isInteger(value) && value >= 1 ? value : undefined;
}

/** Reads the `kat` configuration section; unset or invalid values are left out. */
export function readSettings(source: SettingsSource): KatSettings {
  const command = source.get<unknown>("serverCommand");
  const sandbox = source.get<unknown>("sandbox");
  return {
    serverCommand: Array.isArray(command)
      ? command.filter((part): part is string => typeof part === "string" && part !== "")
      : [],
    model: text(source, "model"),
    baseUrl: text(source, "baseUrl"),
    samples: positiveInt(source, "samples"),
    rounds: positiveInt(source, "rounds"),
    topK: positiveInt(source, "topK"),
    testCommand: text(source, "testCommand"),
    sandbox: sandbox === "bwrap" || sandbox === "none" ? sandbox : undefined,
    saveAfterAccept: source.get<boolean>("saveAfterAccept") ?? true,
  };
}

/** The settings the server knows, without the keys the user left unset. */
export function serverSettings(settings: KatSettings, apiKey?: string): ServerSettings {
  const all: ServerSettings = {
    model: settings.model,
    baseUrl: settings.baseUrl,
    apiKey,
    samples: settings.samples,
    rounds: settings.rounds,
    topK: settings.topK,
    testCommand: settings.testCommand,
    sandbox: settings.sandbox,
  };
  return Object.fromEntries(
    Object.entries(all).filter(([, value]) => value !== undefined && value !== ""),
  ) as ServerSettings;
}

/** The key from SecretStorage wins; `OPENAI_API_KEY` of the environment is the fallback. */
export function resolveApiKey(
  secret: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  return secret || env.OPENAI_API_KEY || undefined;
}

/** kat.serverCommand when set; else the Python extension's interpreter; else python3. */
export function resolveServerCommand(
  settings: KatSettings,
  selectedPython: string | undefined,
): ServerCommand {
  const [command, ...args] = settings.serverCommand;
  if (command) {
    return { command, args, source: "setting" };
  }
  const serve = ["-m", "kat_lsp", "serve"];
  if (selectedPython) {
    return { command: selectedPython, args: serve, source: "python-extension", python: selectedPython };
  }
  return { command: "python3", args: serve, source: "python3", python: "python3" };
}

/** The environment of the spawned server: the API key goes in as OPENAI_API_KEY. */
export function serverEnvironment(
  apiKey: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  return apiKey ? { ...env, OPENAI_API_KEY: apiKey } : { ...env };
}

export function describeCommand(command: ServerCommand): string {
  return [command.command, ...command.args].map((p) => (/\s/.test(p) ? JSON.stringify(p) : p)).join(" ");
}
