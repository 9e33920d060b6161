// Batched settlement: a settlement that throws in JS (a signal's
// removeEventListener) must not keep the other calls of its batch from
// settling, and its exception reaches 'uncaughtException'.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { runFixture } from "./helpers";

describe("settlement", () => {
  it("settles every call of a batch when one settlement throws", async () => {
    const { code, stdout, stderr } = await runFixture("throwing-signal.js");
    assert.equal(code, 0, stderr);
    assert.ok(stdout.trim(), `no report (calls left pending?); stderr: ${stderr}`);
    const report = JSON.parse(stdout.trim()) as { calls: number; fulfilled: number; uncaught: string[] };
    assert.equal(report.fulfilled, report.calls);
    assert.deepEqual(report.uncaught, Array(5).fill("removeEventListener threw"));
  });
});
