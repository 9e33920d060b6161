#!/usr/bin/env node
// How long `Emulator.start()` takes to be ready, in process (the realm-auth-server addon) and as a
// spawned process (the Rust binary, and the package's Node bin): the measurement behind the
// server package's choice of in process (packages/server/README.md). Not part of `npm test`.
//
//   node bench/server-start.mjs [runs]     # default 20; needs release builds:
//   npm run build:server && cargo build --release -p realm-auth-server
//
// Ready means listening: `Emulator.start()` resolved, or the child printed its listening line
// (both bind before they answer). Each spawned child is killed and awaited before the next start.
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const runs = Number(process.argv[2] ?? 20);
const binary = join(process.env.CARGO_TARGET_DIR ?? join(root, "target"), "release", "realm-auth-server");
const nodeBin = join(root, "packages", "server", "bin", "realm-auth-server.js");
const addon = join(root, "packages", "server", "index.js");

/** Median, min and max of `samples` (ms), rounded to 0.01. */
function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  const r = (x) => Math.round(x * 100) / 100;
  return { median: r(at(0.5)), p90: r(at(0.9)), min: r(sorted[0]), max: r(sorted[sorted.length - 1]) };
}

/** Start to first stdout line of a child, then kill it and wait for its exit. */
async function spawnedStart(command, args) {
  const t0 = process.hrtime.bigint();
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(createInterface({ input: child.stdout }), "line");
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  JSON.parse(line); // the --json listening line, or a failure
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await exited;
  return ms;
}

/** A fresh Node process that loads the addon and starts one emulator: its own timing. */
function coldInProcess() {
  const script = `const t0 = process.hrtime.bigint(); const { Emulator } = require(${JSON.stringify(addon)});
    Emulator.start().then(async (e) => { const ms = Number(process.hrtime.bigint() - t0) / 1e6; await e.stop(); console.log(ms); });`;
  const out = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
  if (out.status !== 0) throw new Error(out.stderr);
  return Number(out.stdout.trim());
}

async function main() {
  for (const file of [binary, addon]) if (!existsSync(file)) throw new Error(`${file} is missing: build it first (see the top of this file)`);
  const results = {};
  const { Emulator } = await import(addon).then((m) => m.default);
  const warm = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const emulator = await Emulator.start();
    warm.push(Number(process.hrtime.bigint() - t0) / 1e6);
    await emulator.stop();
  }
  results["in process: Emulator.start() (addon loaded)"] = summary(warm);
  const cold = [];
  for (let i = 0; i < runs; i++) cold.push(coldInProcess());
  results["in process, first start: require + Emulator.start() in a fresh Node"] = summary(cold);
  const rust = [];
  for (let i = 0; i < runs; i++) rust.push(await spawnedStart(binary, ["--port", "0", "--json"]));
  results["spawned: the Rust binary realm-auth-server, to its listening line"] = summary(rust);
  const bin = [];
  for (let i = 0; i < runs; i++) bin.push(await spawnedStart(process.execPath, [nodeBin, "emulator", "--json"]));
  results["spawned: node bin/realm-auth-server.js emulator, to its listening line"] = summary(bin);
  console.log(`| how (${runs} starts each, ms) | median | p90 | min | max |\n|---|---|---|---|---|`);
  for (const [how, s] of Object.entries(results)) console.log(`| ${how} | ${s.median} | ${s.p90} | ${s.min} | ${s.max} |`);
}

await main();
