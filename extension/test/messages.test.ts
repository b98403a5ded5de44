import { describe, expect, it } from "vitest";
import { RecentMessages } from "../src/common/messages";

describe("RecentMessages", () => {
  it("knows a message the server just showed, also when the answer quotes it in full or in part", () => {
    let now = 0;
    const messages = new RecentMessages(30_000, () => now);
    messages.record("KAT cannot start a run: no model endpoint configured");
    expect(messages.has("KAT cannot start a run: no model endpoint configured")).toBe(true);
    expect(messages.has("no model endpoint configured")).toBe(true);
    expect(messages.has("Request failed: KAT cannot start a run: no model endpoint configured")).toBe(true);
    expect(messages.has("KAT applied #1")).toBe(false);
    expect(messages.has(undefined)).toBe(false);
    now = 31_000;
    expect(messages.has("no model endpoint configured")).toBe(false);
  });
});
