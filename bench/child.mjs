// One client process of the benchmark: loads one client, logs in, then runs
// one operation in one mode (warm-up, then repetitions) and prints a JSON
// report on stdout. Started by run.mjs, pinned to the client core.
//   node bench/child.mjs <client> '<json config>'
import { performance } from "node:perf_hooks";
import { percentile } from "./lib/stats.mjs";

const [clientName, cfgJson] = process.argv.slice(2);
const cfg = JSON.parse(cfgJson);
const client = await import(`./clients/${clientName}.mjs`);

const t0 = performance.now();
const lib = client.load(cfg);
const loadMs = performance.now() - t0;
const ops = await client.setup(lib, cfg);
const setupMs = performance.now() - t0;
const op = ops[cfg.op];
if (typeof op !== "function") throw new Error(`unknown op ${cfg.op}`);

/** Runs n ops with `concurrency` loops pulling from one counter; returns latencies (ms). */
async function batch(n, base) {
  const lat = new Float64Array(n);
  let next = 0;
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= n) return;
      const start = performance.now();
      await op(base + i);
      lat[i] = performance.now() - start;
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(cfg.concurrency, n)) }, worker));
  return lat;
}

let base = 0;
await batch(cfg.warmup, base);
base += cfg.warmup;
const reps = [];
for (let r = 0; r < cfg.reps; r++) {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  const lat = await batch(cfg.ops, base);
  const wallMs = performance.now() - w0;
  const c = process.cpuUsage(c0);
  base += cfg.ops;
  reps.push({
    ops: cfg.ops,
    wallMs,
    opsPerSec: cfg.ops / (wallMs / 1000),
    p50Ms: percentile(lat, 50),
    p99Ms: percentile(lat, 99),
    cpuUserMs: c.user / 1000,
    cpuSysMs: c.system / 1000,
    cpuUsPerOp: (c.user + c.system) / cfg.ops,
  });
}
const report = {
  client: client.name,
  op: cfg.op,
  concurrency: cfg.concurrency,
  reps,
  maxRssKb: process.resourceUsage().maxRSS,
  loadMs,
  setupMs,
};
process.stdout.write(`${JSON.stringify(report)}\n`);
// The SDKs keep idle pooled connections; the report is out, so leave now.
process.exit(0);
