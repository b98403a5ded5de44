/** Real git repositories in a temporary folder, for tests that need a real candidate diff. */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export class GitRepo {
  readonly root = mkdtempSync(join(tmpdir(), "kat-ext-test-"));

  constructor(files: Record<string, string | Buffer>) {
    this.git("init", "-q");
    this.write(files);
    this.git("add", "-A");
    this.git("-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "base");
  }

  git(...args: string[]): string {
    return execFileSync("git", args, { cwd: this.root, encoding: "utf8" });
  }

  write(files: Record<string, string | Buffer>): void {
    for (const [name, text] of Object.entries(files)) {
      const path = join(this.root, name);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    }
  }

  read(name: string): string {
    return readFileSync(join(this.root, name), "utf8");
  }

  /** `git diff` of the working tree (renames detected, new files included). */
  diff(): string {
    this.git("add", "-A");
    const patch = this.git("diff", "--cached", "-M", "--binary");
    this.git("reset", "-q");
    return patch;
  }

  /** Puts the files back as committed. */
  restore(): void {
    this.git("reset", "-q", "--hard");
    this.git("clean", "-qfd");
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
