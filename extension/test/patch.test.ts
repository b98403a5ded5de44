import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { candidateSides, parseCandidatePatch } from "../src/review/patch";
import { GitRepo } from "./gitRepo";

const LONG = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join("\n") + "\n";

describe("a candidate's git diff", () => {
  let repo: GitRepo;
  let patch: string;
  const after: Record<string, string> = {};

  beforeAll(() => {
    repo = new GitRepo({
      "src/calc.py": LONG,
      "old.txt": "to delete\nsecond\n",
      "moved.txt": "same content\nmore\nstill more\n",
      "logo.bin": Buffer.from([0, 1, 2, 3]),
    });
    after["src/calc.py"] = LONG.replace("line 2\n", "line two\n").replace("line 28\n", "line 28\nline 28b\n");
    repo.write({
      "src/calc.py": after["src/calc.py"],
      "docs/new file.md": "# New\n\nhello\n",
      "logo.bin": Buffer.from([9, 9]),
    });
    repo.git("rm", "-q", "old.txt");
    repo.git("mv", "moved.txt", "renamed.txt");
    patch = repo.diff();
    repo.restore();
  });

  afterAll(() => repo.remove());

  it("is read file by file with the kind of each change", () => {
    const files = parseCandidatePatch(patch);
    const kinds = Object.fromEntries(files.map((f) => [f.path, f.kind]));
    expect(kinds).toEqual({
      "src/calc.py": "modify",
      "docs/new file.md": "create",
      "old.txt": "delete",
      "renamed.txt": "rename",
      "logo.bin": "binary",
    });
    expect(files.find((f) => f.path === "renamed.txt")?.oldPath).toBe("moved.txt");
    expect(files.find((f) => f.path === "src/calc.py")?.patch.hunks).toHaveLength(2);
  });

  it("gives the file before and after the patch, for several hunks", () => {
    const file = parseCandidatePatch(patch).find((f) => f.path === "src/calc.py")!;
    const sides = candidateSides(file, repo.read("src/calc.py"));
    expect(sides).toEqual({ before: LONG, after: after["src/calc.py"], fit: "exact" });
  });

  it("shows a new file against an empty one and a deleted file against nothing", () => {
    const files = parseCandidatePatch(patch);
    const created = candidateSides(
      files.find((f) => f.kind === "create")!,
      undefined,
    );
    expect(created).toEqual({ before: "", after: "# New\n\nhello\n", fit: "exact" });
    const deleted = candidateSides(
      files.find((f) => f.kind === "delete")!,
      repo.read("old.txt"),
    );
    expect(deleted).toEqual({ before: "to delete\nsecond\n", after: "", fit: "exact" });
  });

  it("applies at an offset when lines were added above the hunks since the run", () => {
    const file = parseCandidatePatch(patch).find((f) => f.path === "src/calc.py")!;
    const sides = candidateSides(file, `# header\n${LONG}`);
    expect(sides.fit).toBe("exact");
    expect(sides.after).toBe(`# header\n${after["src/calc.py"]}`);
  });

  it("recognises a candidate that is already applied", () => {
    const file = parseCandidatePatch(patch).find((f) => f.path === "src/calc.py")!;
    expect(candidateSides(file, after["src/calc.py"])).toEqual({
      before: LONG,
      after: after["src/calc.py"],
      fit: "applied",
    });
  });

  it("falls back to the hunks alone when the file changed where the patch goes", () => {
    const file = parseCandidatePatch(patch).find((f) => f.path === "src/calc.py")!;
    const sides = candidateSides(file, LONG.replace("line 2\n", "line 2 edited by the user\n"));
    expect(sides.fit).toBe("hunks-only");
    expect(sides.before).toContain("line 2\n");
    expect(sides.after).toContain("line two\n");
    expect(sides.after).toContain("⋯\n");
  });

  it("does not pretend to show a binary file as text", () => {
    const file = parseCandidatePatch(patch).find((f) => f.kind === "binary")!;
    expect(candidateSides(file, "\u0000").before).toMatch(/Binary file logo.bin/);
  });
});
