import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkKatModule, pipInstallArgs, selectedInterpreter } from "../src/common/python";

describe("checkKatModule (real python3)", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "kat-python-"));
    mkdirSync(join(dir, "site", "kat_lsp"), { recursive: true });
    writeFileSync(join(dir, "site", "kat_lsp", "__init__.py"), "");
    // An interpreter that sees no site-packages: kat_lsp is not installed for it.
    writeFileSync(join(dir, "bare-python"), '#!/bin/sh\nexec python3 -I -S "$@"\n');
    writeFileSync(join(dir, "nosite-python"), '#!/bin/sh\nexec python3 -S "$@"\n');
    chmodSync(join(dir, "nosite-python"), 0o755);
    writeFileSync(join(dir, "broken-python"), '#!/bin/sh\necho "bad interpreter setup" >&2\nexit 1\n');
    chmodSync(join(dir, "bare-python"), 0o755);
    chmodSync(join(dir, "broken-python"), 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("finds kat_lsp where the interpreter can import it", async () => {
    const env = { ...process.env, PYTHONPATH: join(dir, "site") };
    expect(await checkKatModule("python3", env)).toEqual({ status: "ok", detail: "" });
  });

  it("says the package is missing in an interpreter without it", async () => {
    const check = await checkKatModule(join(dir, "bare-python"));
    expect(check.status).toBe("missing");
    expect(check.detail).toContain("bare-python");
  });

  it("looks where the server will start: a kat_lsp checkout in the workspace counts", async () => {
    const python = join(dir, "nosite-python");
    expect((await checkKatModule(python, process.env)).status).toBe("missing");
    expect((await checkKatModule(python, process.env, join(dir, "site"))).status).toBe("ok");
  });

  it("says when the interpreter does not exist or fails", async () => {
    expect((await checkKatModule(join(dir, "no-such-python"))).status).toBe("no-python");
    const broken = await checkKatModule(join(dir, "broken-python"));
    expect(broken).toMatchObject({ status: "error" });
    expect(broken.detail).toContain("bad interpreter setup");
  });
});

describe("the Python extension", () => {
  it("is skipped when it is not installed", async () => {
    expect(await selectedInterpreter()).toBeUndefined();
  });

  it("installs with pip, from PyPI or a local path", () => {
    expect(pipInstallArgs("kat-lsp")).toEqual(["-m", "pip", "install", "--upgrade", "kat-lsp"]);
    expect(pipInstallArgs("/src/kat-lsp")).toEqual(["-m", "pip", "install", "--upgrade", "/src/kat-lsp"]);
  });
});
