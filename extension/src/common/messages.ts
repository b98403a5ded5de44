/**
 * The server's `window/showMessage` notifications, remembered for a while so that a
 * command does not show the same news a second time when the server's answer repeats it.
 */

export class RecentMessages {
  private shown: Array<{ text: string; at: number }> = [];

  constructor(
    private readonly windowMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  record(text: string): void {
    const at = this.now();
    this.shown = [...this.shown.filter((m) => at - m.at < this.windowMs), { text: text.trim(), at }];
  }

  /** Whether the server showed `text` (or a message containing it, or contained in it) lately. */
  has(text: string | undefined): boolean {
    const wanted = text?.trim();
    if (!wanted) {
      return false;
    }
    const at = this.now();
    return this.shown.some(
      (m) => at - m.at < this.windowMs && (m.text.includes(wanted) || wanted.includes(m.text)),
    );
  }
}
