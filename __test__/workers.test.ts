// The addon in Workers: terminated mid-call, again and again, never crashes
// the process (the owned-future rule of DESIGN.md).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";

describe("worker_threads", () => {
  it("survives 100 Workers terminated in the middle of calls", () => {
    const script = join(__dirname, "fixtures", "worker-teardown.js");
    const run = spawnSync(process.execPath, [script, "100"], { encoding: "utf8", timeout: 240_000 });
    assert.equal(run.signal, null, `killed by ${run.signal}: ${run.stderr}`);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /survived 100 terminations/);
  });

  it("cancels a terminated Worker's calls: no request runs on after its cleanup (counted at the server)", () => {
    const script = join(__dirname, "fixtures", "worker-cancel.js");
    const run = spawnSync(process.execPath, [script, "100"], { encoding: "utf8", timeout: 120_000 });
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout.trim());
    // Each Worker's request reached the server and waited for an answer...
    assert.equal(report.requests, 100);
    // ...and its connection closed when the Worker went, not at the 60 s deadline.
    assert.equal(report.stillOpen, 0);
  });
});
