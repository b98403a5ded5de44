import { describe, expect, it } from "vitest";
import { reviewLenses } from "../src/review/decorations";
import {
  applyLineEdit,
  computeHunks,
  InlineSession,
  splitLines,
  toTextEdit,
  type LineEdit,
} from "../src/review/hunks";

const BEFORE = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a + b\n\nprint(add(1, 2))\n";
const AFTER =
  "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    # multiply\n    return a * b\n\nprint(add(1, 2))\n";

function reviewText(session: InlineSession): string {
  return session.text();
}

describe("computeHunks", () => {
  it("finds each change region with its position in the original file", () => {
    expect(computeHunks(BEFORE, AFTER)).toEqual([
      { start: 1, removed: ["    return a - b"], added: ["    return a + b"] },
      { start: 5, removed: ["    return a + b"], added: ["    # multiply", "    return a * b"] },
    ]);
  });
});

describe("an inline review", () => {
  it("shows each hunk's removed lines above its added lines", () => {
    const session = new InlineSession(BEFORE, computeHunks(BEFORE, AFTER));
    expect(reviewText(session)).toBe(
      "def add(a, b):\n    return a - b\n    return a + b\n\n\ndef mul(a, b):\n    return a + b\n    # multiply\n    return a * b\n\nprint(add(1, 2))\n",
    );
    expect(session.blocks.map((b) => [b.start, b.removed, b.added])).toEqual([
      [1, 1, 1],
      [6, 1, 2],
    ]);
  });

  it("accepting hunk 1 and rejecting hunk 2 leaves exactly the accepted change", () => {
    const session = new InlineSession(BEFORE, computeHunks(BEFORE, AFTER));
    session.accept(0);
    session.reject(1);
    expect(session.done).toBe(true);
    expect(session.text()).toBe(BEFORE.replace("return a - b", "return a + b"));
  });

  it("rejecting hunk 1 and accepting hunk 2, in the other order, leaves the second change only", () => {
    const session = new InlineSession(BEFORE, computeHunks(BEFORE, AFTER));
    session.accept(1);
    session.reject(0);
    expect(session.text()).toBe(BEFORE.replace("    return a + b\n", "    # multiply\n    return a * b\n"));
  });

  it("accept all gives the candidate's file, reject all the untouched one", () => {
    const all = new InlineSession(BEFORE, computeHunks(BEFORE, AFTER));
    all.pending().forEach((b) => all.accept(b.id));
    expect(all.text()).toBe(AFTER);
    const none = new InlineSession(BEFORE, computeHunks(BEFORE, AFTER));
    none.pending().forEach((b) => none.reject(b.id));
    expect(none.text()).toBe(BEFORE);
  });

  it("handles pure insertions, pure deletions and a last line without a line break", () => {
    const before = "a\nb\nc";
    const after = "start\na\nc\nd";
    const session = new InlineSession(before, computeHunks(before, after));
    session.pending().forEach((b) => session.accept(b.id));
    expect(session.text()).toBe(after);
    const rejected = new InlineSession(before, computeHunks(before, after));
    rejected.pending().forEach((b) => rejected.reject(b.id));
    expect(rejected.text()).toBe(before);
  });

  it("keeps CRLF files CRLF", () => {
    const before = BEFORE.replace(/\n/g, "\r\n");
    const after = AFTER.replace(/\n/g, "\r\n");
    const session = new InlineSession(before, computeHunks(before, after));
    session.accept(0);
    session.accept(1);
    expect(session.text("\r\n")).toBe(after);
  });

  it("moves later hunks when the user types above them and drops hunks the user edits", () => {
    const session = new InlineSession(BEFORE, computeHunks(BEFORE, AFTER));
    const typed = ["# a comment", "# another", ...session.lines];
    session.sync(typed);
    expect(session.blocks.map((b) => b.start)).toEqual([3, 8]);
    const edited = [...typed];
    edited[4] = "    return a + b  # the user's own fix";
    session.sync(edited);
    expect(session.blocks.map((b) => b.state)).toEqual(["edited", "pending"]);
    session.reject(1);
    expect(session.text()).toBe(
      "# a comment\n# another\ndef add(a, b):\n    return a - b\n    return a + b  # the user's own fix\n\n\ndef mul(a, b):\n    return a + b\n\nprint(add(1, 2))\n",
    );
  });
});

describe("toTextEdit", () => {
  function applyText(text: string, edit: LineEdit, eol: string): string {
    const lines = splitLines(text);
    const spec = toTextEdit(lines, edit, eol);
    const offset = (line: number, character: number) =>
      lines.slice(0, line).reduce((sum, l) => sum + l.length + eol.length, 0) + character;
    return (
      text.slice(0, offset(spec.startLine, spec.startCharacter)) +
      spec.text +
      text.slice(offset(spec.endLine, spec.endCharacter))
    );
  }

  it("makes the same change as the line edit, at the start, middle and end, with and without a final newline", () => {
    const texts = ["a\nb\nc\n", "a\nb\nc", "only", ""];
    for (const text of texts) {
      const count = splitLines(text).length;
      for (let start = 0; start <= count; start++) {
        for (let deleteCount = 0; start + deleteCount <= count; deleteCount++) {
          for (const insert of [[], ["X"], ["X", "Y"]]) {
            const edit = { start, deleteCount, insert };
            const expected = applyLineEdit(splitLines(text), edit).join("\n");
            if (applyLineEdit(splitLines(text), edit).length === 0) {
              continue; // an editor always has one line; deleting all of them leaves ""
            }
            expect(applyText(text, edit, "\n"), JSON.stringify({ text, edit })).toBe(expected);
          }
        }
      }
    }
  });
});

describe("the review's lenses", () => {
  it("offer Accept All / Reject All at the top and Accept / Reject above each pending hunk", () => {
    const session = new InlineSession(BEFORE, computeHunks(BEFORE, AFTER));
    session.accept(0);
    const lenses = reviewLenses("KAT #1 · calc.py", "file:///p/calc.py", session.pending());
    expect(lenses.map((l) => [l.line, l.command.title, l.command.command, l.command.arguments])).toEqual([
      [0, "KAT #1 · calc.py: 1 hunk to review", "", undefined],
      [0, "Accept All", "kat.inline.acceptAll", ["file:///p/calc.py"]],
      [0, "Reject All", "kat.inline.rejectAll", ["file:///p/calc.py"]],
      [5, "Accept", "kat.inline.acceptHunk", ["file:///p/calc.py", 1]],
      [5, "Reject", "kat.inline.rejectHunk", ["file:///p/calc.py", 1]],
    ]);
  });
});
