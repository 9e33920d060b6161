// Batched settlement: a settlement that throws in JS (a signal's
// removeEventListener) must not keep the other calls of its batch from
// settling, and its exception reaches 'uncaughtException'. A panic of ours
// anywhere becomes an error in JS.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { ErrorCode } from "realm-auth-native";

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

  it("a panic of ours at any boundary becomes an error in JS and the process lives (debug build hooks)", async () => {
    const { code, stdout, stderr } = await runFixture("panics.js");
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout.trim());
    // A synchronous method throws (napi-rs's catch_unwind: the panic's message).
    assert.equal(report.sync.message, "a test panic in a synchronous method");
    // An async call rejects with ErrorCode.Internal, wherever it panicked.
    assert.deepEqual(report.call, { message: "realm-auth-native panicked: a test panic in a call", code: ErrorCode.Internal });
    assert.deepEqual(report.settle, { message: "realm-auth-native panicked: a test panic while settling", code: ErrorCode.Internal });
    // A job on the JS thread (a listener delivery) reports it as uncaught.
    assert.equal(report.event, 1);
    assert.deepEqual(report.uncaught, [{ message: "realm-auth-native panicked: a test panic in an event", code: ErrorCode.Internal }]);
    assert.equal(report.after, "LoggedIn");
  });
});
