// Batched settlement: a settlement that throws in JS (a signal's
// removeEventListener) must not keep the other calls of its batch from
// settling, and its exception reaches 'uncaughtException'.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { describe, it } from "node:test";

describe("settlement", () => {
  it("settles every call of a batch when one settlement throws", async () => {
    const child = spawn(process.execPath, [join(__dirname, "fixtures", "throwing-signal.js")], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0, stderr);
    assert.ok(stdout.trim(), `no report (calls left pending?); stderr: ${stderr}`);
    const report = JSON.parse(stdout.trim()) as { calls: number; fulfilled: number; uncaught: string[] };
    assert.equal(report.fulfilled, report.calls);
    assert.deepEqual(report.uncaught, Array(5).fill("removeEventListener threw"));
  });
});
