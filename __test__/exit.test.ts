// Deadlines and process exit: a stalled call settles at its deadline, and the
// process exits by itself right after its last call (no handle left open).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ErrorCode } from "realm-auth-native";

describe("process exit", () => {
  it("settles at the deadline and exits promptly after the last call", async () => {
    const child = spawn(process.execPath, [join(__dirname, "fixtures", "exit-after-calls.js")], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const [code] = (await once(child, "exit")) as [number | null];
    const exitedAt = Date.now();
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout.trim()) as { outcome: number; settledMs: number; finishedAt: number };
    assert.equal(report.outcome, ErrorCode.Timeout);
    assert.ok(report.settledMs >= 250 && report.settledMs < 1000, `settled after ${report.settledMs} ms`);
    assert.ok(exitedAt - report.finishedAt < 1000, `exited ${exitedAt - report.finishedAt} ms after the last call`);
  });
});
