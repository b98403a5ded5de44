/**
 * A small stand-in for the `vscode` module (aliased in vitest.config.mts): the parts the
 * extension's logic touches, with state the tests can set (`workspace.workspaceFolders`,
 * `window.messages`, `commands.executed`).
 */

export class Disposable {
  constructor(private readonly callOnDispose: () => void = () => undefined) {}
  dispose(): void {
    this.callOnDispose();
  }
}

export type Event<T> = (listener: (e: T) => unknown) => Disposable;

export class EventEmitter<T> {
  private listeners: Array<(e: T) => unknown> = [];
  readonly event: Event<T> = (listener) => {
    this.listeners.push(listener);
    return new Disposable(() => (this.listeners = this.listeners.filter((l) => l !== listener)));
  };
  fire(data: T): void {
    for (const listener of [...this.listeners]) {
      listener(data);
    }
  }
  dispose(): void {
    this.listeners = [];
  }
}

const URI_RE = /^(([^:/?#]+):)?(\/\/([^/?#]*))?([^?#]*)(\?([^#]*))?(#(.*))?/;

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
    readonly fragment: string,
  ) {}
  static file(path: string): Uri {
    return new Uri("file", "", path.startsWith("/") ? path : `/${path}`, "", "");
  }
  static parse(value: string): Uri {
    const m = URI_RE.exec(value) ?? [];
    return new Uri(m[2] ?? "", m[4] ?? "", decodeURIComponent(m[5] ?? ""), m[7] ?? "", m[9] ?? "");
  }
  static from(c: {
    scheme: string;
    authority?: string;
    path?: string;
    query?: string;
    fragment?: string;
  }): Uri {
    return new Uri(c.scheme, c.authority ?? "", c.path ?? "", c.query ?? "", c.fragment ?? "");
  }
  static joinPath(base: Uri, ...parts: string[]): Uri {
    return base.with({ path: [base.path.replace(/\/$/, ""), ...parts].join("/") });
  }
  get fsPath(): string {
    return this.path;
  }
  with(change: { path?: string; query?: string }): Uri {
    return new Uri(
      this.scheme,
      this.authority,
      change.path ?? this.path,
      change.query ?? this.query,
      this.fragment,
    );
  }
  toString(): string {
    const authority = this.authority || this.scheme === "file" ? `//${this.authority}` : "";
    return `${this.scheme}:${authority}${this.path}${this.query ? `?${this.query}` : ""}`;
  }
}

export class Position {
  constructor(
    readonly line: number,
    readonly character: number,
  ) {}
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(startLine: number, startCharacter: number, endLine: number, endCharacter: number) {
    this.start = new Position(startLine, startCharacter);
    this.end = new Position(endLine, endCharacter);
  }
}

export enum TreeItemCollapsibleState {
  None = 0,
  Collapsed = 1,
  Expanded = 2,
}

export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: unknown;
  iconPath?: unknown;
  contextValue?: string;
  command?: { command: string; title: string; arguments?: unknown[] };
  label?: string;
  resourceUri?: Uri;
  constructor(
    labelOrUri: string | Uri,
    readonly collapsibleState: TreeItemCollapsibleState = TreeItemCollapsibleState.None,
  ) {
    if (typeof labelOrUri === "string") {
      this.label = labelOrUri;
    } else {
      this.resourceUri = labelOrUri;
    }
  }
}

export class ThemeIcon {
  constructor(readonly id: string) {}
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class MarkdownString {
  value = "";
  appendMarkdown(text: string): this {
    this.value += text;
    return this;
  }
  appendText(text: string): this {
    this.value += text;
    return this;
  }
}

export class CancellationError extends Error {}

export const workspace = {
  workspaceFolders: undefined as Array<{ uri: Uri; name: string; index: number }> | undefined,
  textDocuments: [] as Array<{ uri: Uri; getText(): string; isDirty: boolean }>,
  fs: {
    async readFile(uri: Uri): Promise<Uint8Array> {
      const { readFile } = await import("node:fs/promises");
      return readFile(uri.fsPath);
    },
  },
  getConfiguration: () => ({ get: () => undefined }),
  isTrusted: true,
  trustGranted: new EventEmitter<void>(),
  onDidGrantWorkspaceTrust(listener: () => unknown): Disposable {
    return workspace.trustGranted.event(listener);
  },
  /** What VS Code does when the user trusts the folder. */
  grantTrust(): void {
    workspace.isTrusted = true;
    workspace.trustGranted.fire();
  },
};

export const window = {
  messages: [] as Array<{ level: string; text: string }>,
  async showInformationMessage(text: string): Promise<undefined> {
    window.messages.push({ level: "info", text });
    return undefined;
  },
  /** Buttons the user will press, in order, for warnings that offer some. */
  answers: [] as string[],
  async showWarningMessage(text: string, ...items: unknown[]): Promise<string | undefined> {
    window.messages.push({ level: "warning", text });
    const buttons = items.filter((i): i is string => typeof i === "string");
    const answer = window.answers.shift();
    return answer !== undefined && buttons.includes(answer) ? answer : undefined;
  },
  async showErrorMessage(text: string, ...items: unknown[]): Promise<string | undefined> {
    window.messages.push({ level: "error", text });
    const buttons = items.filter((i): i is string => typeof i === "string");
    const answer = window.answers.shift();
    return answer !== undefined && buttons.includes(answer) ? answer : undefined;
  },
};

export const commands = {
  executed: [] as Array<{ command: string; args: unknown[] }>,
  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    commands.executed.push({ command, args });
    return undefined;
  },
};

export const extensions = {
  getExtension: (_id: string): undefined => undefined,
};

export class CancellationTokenSource {
  private cancelled = false;
  private readonly emitter = new EventEmitter<void>();
  readonly token = {
    isCancellationRequested: false,
    onCancellationRequested: this.emitter.event,
  };
  cancel(): void {
    if (!this.cancelled) {
      this.cancelled = true;
      this.token.isCancellationRequested = true;
      this.emitter.fire();
    }
  }
  dispose(): void {
    this.emitter.dispose();
  }
}
