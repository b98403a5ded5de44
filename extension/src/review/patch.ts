/**
 * A candidate's unified diff (git format, from `kat.lsp.candidateDiff`) read file by file,
 * and the two sides of each file: before = the file as it is now, after = with the patch.
 */
import { applyPatch, parsePatch, reversePatch, type StructuredPatch } from "diff";

export type FileChangeKind = "modify" | "create" | "delete" | "rename" | "binary";

export interface FilePatch {
  /** Path relative to the run's root (the new name for renames). */
  path: string;
  /** The old path of a renamed file. */
  oldPath?: string;
  kind: FileChangeKind;
  patch: StructuredPatch;
}

/** How the sides were made: patched onto the current file, found already applied, or from hunks alone. */
export type Fit = "exact" | "applied" | "hunks-only";

export interface Sides {
  before: string;
  after: string;
  fit: Fit;
}

function stripPrefix(name: string | undefined): string | undefined {
  if (!name || name === "/dev/null") {
    return undefined;
  }
  return name.replace(/^[ab]\//, "");
}

/** Sections of a git diff with a binary body ("GIT binary patch" or "Binary files … differ"). */
function binarySections(text: string): Set<number> {
  const binary = new Set<number>();
  text
    .split(/^(?=diff --git )/m)
    .filter((s) => s.startsWith("diff --git "))
    .forEach((section, i) => {
      if (/^(GIT binary patch|Binary files .* differ)$/m.test(section)) {
        binary.add(i);
      }
    });
  return binary;
}

export function parseCandidatePatch(text: string): FilePatch[] {
  const files: FilePatch[] = [];
  const binary = binarySections(text);
  for (const [index, patch] of parsePatch(text).entries()) {
    const oldPath = stripPrefix(patch.oldFileName);
    const newPath = stripPrefix(patch.newFileName);
    const path = newPath ?? oldPath;
    if (!path) {
      continue;
    }
    let kind: FileChangeKind = "modify";
    if (patch.isBinary || (patch.isGit && binary.has(index))) {
      kind = "binary";
    } else if (patch.isCreate || !oldPath) {
      kind = "create";
    } else if (patch.isDelete || !newPath) {
      kind = "delete";
    } else if (patch.isRename || oldPath !== newPath) {
      kind = "rename";
    }
    files.push({ path, oldPath: kind === "rename" ? oldPath : undefined, kind, patch });
  }
  return files;
}

/** The file texts the hunks show, with a marker line where unchanged lines are left out. */
export function hunksOnly(patch: StructuredPatch): Sides {
  const before: string[] = [];
  const after: string[] = [];
  patch.hunks.forEach((hunk, i) => {
    if (i > 0) {
      before.push("⋯");
      after.push("⋯");
    }
    for (const line of hunk.lines) {
      const body = line.slice(1);
      if (line.startsWith(" ")) {
        before.push(body);
        after.push(body);
      } else if (line.startsWith("-")) {
        before.push(body);
      } else if (line.startsWith("+")) {
        after.push(body);
      }
    }
  });
  return { before: before.join("\n") + "\n", after: after.join("\n") + "\n", fit: "hunks-only" };
}

/**
 * Before and after of one file. `current` is the file's text now (undefined: no such file).
 * When the patch no longer fits, an already applied patch is recognised; else only the
 * hunks are shown.
 */
export function candidateSides(file: FilePatch, current: string | undefined): Sides {
  if (file.kind === "binary") {
    const note = `Binary file ${file.path}: its changes cannot be shown as text.\n`;
    return { before: note, after: note, fit: "hunks-only" };
  }
  const base = file.kind === "create" ? (current ?? "") : current;
  if (base !== undefined) {
    const after = applyPatch(base, file.patch);
    if (after !== false) {
      return { before: base, after, fit: "exact" };
    }
    const before = applyPatch(base, reversePatch(file.patch));
    if (before !== false) {
      return { before, after: base, fit: "applied" };
    }
  }
  if (file.kind === "create" && current === undefined) {
    return { before: "", after: hunksOnly(file.patch).after, fit: "hunks-only" };
  }
  return hunksOnly(file.patch);
}
