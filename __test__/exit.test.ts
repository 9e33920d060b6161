// Deadlines and process exit: a stalled call settles at its deadline, and the
// process exits by itself right after its last call (no handle left open).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ErrorCode } from "realm-auth-native";

import { runFixture } from "./helpers";

describe("process exit", () => {
  it("settles at the deadline and exits promptly after the last call", async () => {
    const { code, stdout, stderr } = await runFixture("exit-after-calls.js");
    const exitedAt = Date.now();
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout.trim()) as { outcome: number; settledMs: number; finishedAt: number };
    assert.equal(report.outcome, ErrorCode.Timeout);
    assert.ok(report.settledMs >= 250 && report.settledMs < 1000, `settled after ${report.settledMs} ms`);
    assert.ok(exitedAt - report.finishedAt < 1000, `exited ${exitedAt - report.finishedAt} ms after the last call`);
  });
});
