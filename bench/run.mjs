// The benchmark runner (`npm run bench`): builds what it needs, starts the
// emulator pinned to one core, runs every (operation, mode, client) in a fresh
// client process pinned to the other core, and writes bench/results/ and the
// table in bench/README.md. See bench/README.md.
//
// Options (environment):
//   BENCH_QUICK=1           few ops, for a smoke test (results go to results/raw/, README untouched)
//   BENCH_CLIENTS=a,b       subset of: native,native-memory,native-fetch,realm-web,fetch,floor,floor-hop,
//                           floor-hyper-hop (floor-hop on hyper-util's client, the SDK's transport),
//                           rust-sdk; also floor-hyper (not in a full run: the raw floor on hyper-util)
//   BENCH_OPS=a,b           subset of: fetchAll,fetch,createDelete,enableDisable,login
//   BENCH_MODES=1,64        concurrency levels
//   BENCH_ROUNDS, BENCH_REPS, BENCH_WARMUP, BENCH_N_SEQ, BENCH_N_C64   counts (see defaults below)
//   BENCH_NO_BUILD=1        reuse the previous build
//   BENCH_TARGET_DIR        cargo target dir (default bench/.build/target)
//   BENCH_SERVER_CPU, BENCH_CLIENT_CPU   cores (default 0 and 1)
//   BENCH_NATIVE_DIR=dir    benchmark the addon in dir (index.js + .node, e.g. a build of a
//                           proposed change) instead of building this tree's; results are
//                           written as results/<BENCH_LABEL or "variant">.{json,md}
//   BENCH_COMPARE=file.json after the run, print each figure's change against that earlier
//                           run with both spreads (bench/compare.mjs)
// A full run also draws bench/results/{throughput,cpu,latency,rss}.svg (bench/charts.mjs).
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { median, spread } from "./lib/stats.mjs";
import { CLIENT_LABEL, OP_LABEL } from "./lib/labels.mjs";

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(benchDir);
const env = process.env;
const quick = env.BENCH_QUICK === "1";
const list = (v, d) => (v ? v.split(",").map((s) => s.trim()).filter(Boolean) : d);

const CLIENTS = list(env.BENCH_CLIENTS, ["native", "native-memory", "native-fetch", "realm-web", "fetch", "floor", "floor-hop", "floor-hyper-hop", "rust-sdk"]);
const OPS = list(env.BENCH_OPS, ["fetchAll", "fetch", "createDelete", "enableDisable", "login"]);
const MODES = list(env.BENCH_MODES, ["1", "64"]).map(Number);
const ROUNDS = Number(env.BENCH_ROUNDS ?? (quick ? 1 : 2));
const REPS = Number(env.BENCH_REPS ?? (quick ? 2 : 3));
const WARMUP = Number(env.BENCH_WARMUP ?? (quick ? 50 : 300));
const N_SEQ = Number(env.BENCH_N_SEQ ?? (quick ? 100 : 1000));
const N_C64 = Number(env.BENCH_N_C64 ?? (quick ? 300 : 3000));
const SERVER_CPU = env.BENCH_SERVER_CPU ?? "0";
const CLIENT_CPU = env.BENCH_CLIENT_CPU ?? "1";
const targetDir = path.resolve(env.BENCH_TARGET_DIR ?? path.join(benchDir, ".build", "target"));
const buildDir = path.join(benchDir, ".build");
const nativeDir = env.BENCH_NATIVE_DIR ? path.resolve(env.BENCH_NATIVE_DIR) : buildDir;
const nodeFile = path.join(nativeDir, "realm-auth-native.linux-x64-gnu.node");
const nativeEntry = path.join(nativeDir, "index.js");
const emulatorBin = path.join(targetDir, "release", "realm-auth-server");
const floorBin = path.join(targetDir, "release", "realm-auth-bench-floor");
const resultsDir = path.join(benchDir, "results");
const log = (...a) => console.error("[bench]", ...a);

function sh(cmd, args, opts = {}) {
  log("$", cmd, args.join(" "));
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status ?? r.signal})`);
}

function build() {
  const cargoEnv0 = { ...env, CARGO_TARGET_DIR: targetDir };
  if (env.BENCH_NATIVE_DIR) {
    sh("cargo", ["build", "--release", "-p", "realm-auth-server", "-p", "realm-auth-bench-floor"], { env: cargoEnv0 });
    return;
  }
  const cargoEnv = { ...env, CARGO_TARGET_DIR: targetDir };
  sh("cargo", ["build", "--release", "-p", "realm-auth-server", "-p", "realm-auth-bench-floor"], { env: cargoEnv });
  // The release addon goes to bench/.build only: the repo root's .node is others' (debug) build.
  const napi = path.join(root, "node_modules", ".bin", "napi");
  sh(napi, ["build", "--platform", "--release", "--target-dir", targetDir, "-o", buildDir], { env: { ...env, CARGO_TARGET_DIR: targetDir } });
}

function pinned(cpu, cmd, args) {
  return ["taskset", ["-c", cpu, cmd, ...args]];
}

function startEmulator() {
  const [cmd, args] = pinned(SERVER_CPU, emulatorBin, [
    "--port", "0", "--app-id", "bench-app", "--threads", "1",
    // Room for 64 concurrent create+delete pairs; one PBKDF2 round so that the
    // server's password hashing never caps the login figures.
    "--max-api-keys", "1000", "--password-iterations", "1",
    // Keep-alive connections live as long as the run, as before the limits came.
    "--max-requests-per-connection", "0",
  ]);
  // The control token, chosen here and handed over in the environment, not in argv.
  const controlToken = randomBytes(24).toString("hex");
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, REALM_AUTH_EMULATOR_CONTROL_TOKEN: controlToken } });
  return new Promise((resolve, reject) => {
    let out = "";
    child.on("exit", (code) => reject(new Error(`emulator exited (${code}) before listening`)));
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve({ child, baseUrl: m[1], controlToken });
    });
  });
}

async function post(url, body, headers = {}) {
  const r = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`POST ${url}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** The user all clients share, with 5 keys. */
async function prepare(baseUrl, controlToken) {
  const email = "bench@example.com";
  const password = "bench-password-1";
  await post(`${baseUrl}/_emulator/users`, { email, password }, { Authorization: `Bearer ${controlToken}` });
  const s = await post(`${baseUrl}/api/client/v2.0/app/bench-app/auth/providers/local-userpass/login`, { provider: "local-userpass", username: email, password });
  const auth = { Authorization: `Bearer ${s.refresh_token}` };
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await post(`${baseUrl}/api/client/v2.0/auth/api_keys`, { name: `bench-key-${i}` }, auth))._id);
  return { email, password, fetchKeyId: ids[0], toggleKeyId: ids[1], expectKeys: 5, auth };
}

async function keyCount(baseUrl, auth) {
  const r = await fetch(`${baseUrl}/api/client/v2.0/auth/api_keys`, { headers: auth });
  return (await r.json()).length;
}

function runClient(client, cfg) {
  const json = JSON.stringify(cfg);
  const rust = ["floor", "floor-hop", "floor-hyper", "floor-hyper-hop", "rust-sdk"].includes(client);
  const floorCfg = { ...cfg, hop: client.endsWith("-hop"), sdk: client === "rust-sdk", hyper: client.startsWith("floor-hyper") };
  const [cmd, args] = rust
    ? pinned(CLIENT_CPU, floorBin, [JSON.stringify(floorCfg)])
    : pinned(CLIENT_CPU, process.execPath, [path.join(benchDir, "child.mjs"), client, json]);
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 16 << 20, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${client} ${cfg.op} c${cfg.concurrency} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

/** Median of `require()` of a module in fresh processes (pinned like the clients). */
function loadTime(entry, runs) {
  const code = `const t=process.hrtime.bigint();require(${JSON.stringify(entry)});process.stdout.write(String(Number(process.hrtime.bigint()-t)/1e6))`;
  const times = [];
  for (let i = 0; i < runs; i++) {
    const [cmd, args] = pinned(CLIENT_CPU, process.execPath, ["-e", code]);
    times.push(Number(execFileSync(cmd, args, { cwd: root, encoding: "utf8" })));
  }
  return { medianMs: median(times), ...spread(times), runs: times };
}

function machine() {
  const cpus = os.cpus();
  const rustc = spawnSync("rustc", ["--version"], { encoding: "utf8" }).stdout?.trim();
  return {
    cpu: cpus[0]?.model,
    cores: cpus.length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    rustc,
    commit: spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).stdout?.trim(),
    serverCpu: SERVER_CPU,
    clientCpu: CLIENT_CPU,
  };
}

function summarize(report) {
  const pick = (k) => report.reps.map((r) => r[k]);
  const s = {};
  for (const k of ["opsPerSec", "p50Ms", "p99Ms", "cpuUsPerOp"]) s[k] = { median: median(pick(k)), ...spread(pick(k)) };
  s.maxRssMb = (report.maxRssKb ?? report.max_rss_kb) / 1024;
  return s;
}

const f0 = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const fInt = (x) => Math.round(x).toLocaleString("en-US");

function markdown(res) {
  const lines = [];
  const m = res.machine;
  lines.push(`Run ${res.date}: ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, ${m.kernel}, Node ${m.node}, ${m.rustc}.`);
  lines.push(`Emulator pinned to core ${m.serverCpu}, each client process to core ${m.clientCpu}. Load average before/after: ${res.loadBefore.map((x) => x.toFixed(2)).join(" ")} / ${res.loadAfter.map((x) => x.toFixed(2)).join(" ")}.`);
  lines.push(`realm-auth-native: the release build in \`${res.params.nativeDir}\`${res.params.nativeDir === "bench/.build" ? ` (this tree, commit ${m.commit})` : ""}.`);
  lines.push(`Per (client, op, mode): ${res.params.rounds} fresh processes, taking turns with the other clients; each does ${res.params.warmup} warm-up ops, then ${res.params.reps} repetitions of ${res.params.nSeq} ops (sequential) or ${res.params.nC64} ops (concurrency 64). Figures are the median of the ${res.params.rounds * res.params.reps} repetitions; ± is their spread, (max−min)/median; peak RSS is the largest of the processes.`);
  lines.push("");
  lines.push("| op | client | seq ops/s | c64 ops/s | seq p50 / p99 ms | c64 p50 / p99 ms | CPU µs/op seq | CPU µs/op c64 | peak RSS MB seq / c64 |");
  lines.push("|---|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const op of res.params.ops) {
    for (const client of res.params.clients) {
      const seq = res.results.find((r) => r.op === op && r.client === client && r.concurrency === 1);
      const c64 = res.results.find((r) => r.op === op && r.client === client && r.concurrency === 64);
      const tp = (r) => (r ? `${fInt(r.summary.opsPerSec.median)} ±${r.summary.opsPerSec.pct.toFixed(0)}%` : "–");
      const lat = (r) => (r ? `${f0(r.summary.p50Ms.median)} / ${f0(r.summary.p99Ms.median)}` : "–");
      const cpu = (r) => (r ? `${f0(r.summary.cpuUsPerOp.median)} ±${r.summary.cpuUsPerOp.pct.toFixed(0)}%` : "–");
      const rss = (r) => (r ? r.summary.maxRssMb.toFixed(0) : "–");
      lines.push(`| ${OP_LABEL[op]} | ${CLIENT_LABEL[client]} | ${tp(seq)} | ${tp(c64)} | ${lat(seq)} | ${lat(c64)} | ${cpu(seq)} | ${cpu(c64)} | ${rss(seq)} / ${rss(c64)} |`);
    }
  }
  lines.push("");
  if (res.load) {
    lines.push(`Module load (\`require\`, fresh process, median of ${res.load.native.runs.length}): realm-auth-native **${res.load.native.medianMs.toFixed(1)} ms** (${res.load.native.min.toFixed(1)}–${res.load.native.max.toFixed(1)}); realm-web ${res.load.realmWeb.medianMs.toFixed(1)} ms (${res.load.realmWeb.min.toFixed(1)}–${res.load.realmWeb.max.toFixed(1)}). Release \`.node\` (linux-x64-gnu): **${(res.nodeBytes / 2 ** 20).toFixed(2)} MiB** (${fInt(res.nodeBytes)} bytes).`);
    lines.push("");
  }
  lines.push("| target | measured | verdict |");
  lines.push("|---|---|---|");
  for (const t of res.targets) lines.push(`| ${t.target} | ${t.measured} | ${t.pass === null ? (t.target.startsWith("(diagnostic)") ? "info" : "n/a") : t.pass ? "**pass**" : "**MISS**"} |`);
  return lines.join("\n");
}

function targets(res) {
  const get = (client, op, c) => res.results.find((r) => r.client === client && r.op === op && r.concurrency === c)?.summary;
  const out = [];
  const ratio = (a, b) => (a && b ? a / b : null);
  const add = (target, value, pass, measured) => out.push({ target, value, pass: value === null ? null : pass, measured });
  let r = ratio(get("native", "fetchAll", 64)?.opsPerSec.median, get("realm-web", "fetchAll", 64)?.opsPerSec.median);
  add("fetchAll c64 throughput ≥ 5× realm-web", r, r >= 5, r === null ? "–" : `${r.toFixed(2)}×`);
  r = ratio(get("native", "fetchAll", 1)?.opsPerSec.median, get("realm-web", "fetchAll", 1)?.opsPerSec.median);
  add("fetchAll sequential throughput ≥ 2× realm-web", r, r >= 2, r === null ? "–" : `${r.toFixed(2)}×`);
  for (const op of res.params.ops) {
    r = ratio(get("native", op, 64)?.cpuUsPerOp.median, get("floor", op, 64)?.cpuUsPerOp.median);
    add(`CPU/op at c64 ≤ 1.3× raw-Rust floor: ${OP_LABEL[op]}`, r, r <= 1.3, r === null ? "–" : `${r.toFixed(2)}× (${f0(get("native", op, 64).cpuUsPerOp.median)} vs ${f0(get("floor", op, 64).cpuUsPerOp.median)} µs)`);
  }
  // Issue 16: the addon against `floor-hop`, the same requests through one thread hop without
  // JS. A login is held to it with users in memory, the same work: `floor-hop` keeps no users,
  // and a login stored in the user file also makes a durable write (the diagnostic after).
  const hopped = (op) => (op === "login" ? "native-memory" : "native");
  const spread = (s, f) => `±${s[f].pct.toFixed(0)}%`;
  for (const op of res.params.ops) {
    const [sdk, hop] = [get(hopped(op), op, 64), get("floor-hop", op, 64)];
    const who = op === "login" ? ", users in memory" : "";
    r = ratio(sdk?.cpuUsPerOp.median, hop?.cpuUsPerOp.median);
    add(`(issue 16) CPU/op at c64 ≤ 1.0× the cross-thread Rust floor: ${OP_LABEL[op]}${who}`, r, r <= 1, r === null ? "–" : `${r.toFixed(2)}× (${f0(sdk.cpuUsPerOp.median)} ${spread(sdk, "cpuUsPerOp")} vs ${f0(hop.cpuUsPerOp.median)} ${spread(hop, "cpuUsPerOp")} µs)`);
    r = ratio(sdk?.p99Ms.median, hop?.p99Ms.median);
    add(`(issue 16) p99 at c64 ≤ 1.5× the cross-thread Rust floor's: ${OP_LABEL[op]}${who}`, r, r <= 1.5, r === null ? "–" : `${r.toFixed(2)}× (${f0(sdk.p99Ms.median)} ${spread(sdk, "p99Ms")} vs ${f0(hop.p99Ms.median)} ${spread(hop, "p99Ms")} ms)`);
  }
  {
    const [sdk, hop] = [get("native", "login", 64), get("floor-hop", "login", 64)];
    r = ratio(sdk?.cpuUsPerOp.median, hop?.cpuUsPerOp.median);
    if (r !== null) out.push({ target: `(diagnostic) CPU/op at c64 vs the cross-thread Rust floor: ${OP_LABEL.login}, users in the user file`, value: r, pass: null, measured: `${r.toFixed(2)}× (${f0(sdk.cpuUsPerOp.median)} vs ${f0(hop.cpuUsPerOp.median)} µs); p99 ${ratio(sdk.p99Ms.median, hop.p99Ms.median).toFixed(2)}×` });
  }
  for (const op of res.params.ops) {
    r = ratio(get("rust-sdk", op, 64)?.cpuUsPerOp.median, get("floor", op, 64)?.cpuUsPerOp.median);
    if (r !== null) out.push({ target: `(diagnostic) CPU/op at c64 of the SDK's Rust core without Node vs the raw-Rust floor: ${OP_LABEL[op]}`, value: r, pass: null, measured: `${r.toFixed(2)}×` });
  }
  for (const op of res.params.ops) {
    const [sdk, hop] = [get("native", op, 64), get("floor-hyper-hop", op, 64)];
    r = ratio(sdk?.cpuUsPerOp.median, hop?.cpuUsPerOp.median);
    if (r !== null) out.push({ target: `(diagnostic) CPU/op at c64 vs the cross-thread Rust floor on hyper-util (the SDK's transport): ${OP_LABEL[op]}`, value: r, pass: null, measured: `${r.toFixed(2)}× (${f0(sdk.cpuUsPerOp.median)} vs ${f0(hop.cpuUsPerOp.median)} µs); p99 ${ratio(sdk.p99Ms.median, hop.p99Ms.median).toFixed(2)}×` });
  }
  for (const op of res.params.ops) {
    r = ratio(get("floor-hyper", op, 64)?.cpuUsPerOp.median, get("floor", op, 64)?.cpuUsPerOp.median);
    if (r !== null) out.push({ target: `(diagnostic) CPU/op at c64 of the raw floor on hyper-util without reqwest vs on reqwest: ${OP_LABEL[op]}`, value: r, pass: null, measured: `${r.toFixed(2)}× (${f0(get("floor-hyper", op, 64).cpuUsPerOp.median)} vs ${f0(get("floor", op, 64).cpuUsPerOp.median)} µs)` });
  }
  for (const op of res.params.ops) {
    for (const c of res.params.modes) {
      r = ratio(get("native", op, c)?.opsPerSec.median, get("native-memory", op, c)?.opsPerSec.median);
      if (r === null) continue;
      const [a, b] = [get("native", op, c), get("native-memory", op, c)];
      out.push({
        target: `(diagnostic) throughput with the user store on vs off: ${OP_LABEL[op]}, ${c === 1 ? "sequential" : `c${c}`}`,
        value: r,
        pass: null,
        measured: `${r.toFixed(2)}× (${fInt(a.opsPerSec.median)} ±${a.opsPerSec.pct.toFixed(0)}% vs ${fInt(b.opsPerSec.median)} ±${b.opsPerSec.pct.toFixed(0)}% ops/s; p50 ${f0(a.p50Ms.median)} vs ${f0(b.p50Ms.median)} ms)`,
      });
    }
  }
  for (const op of res.params.ops) {
    for (const c of res.params.modes) {
      const [a, b] = [get("native-fetch", op, c), get("native-memory", op, c)];
      if (!a || !b) continue;
      out.push({
        target: `(diagnostic) the fetch option vs the Rust transport: ${OP_LABEL[op]}, ${c === 1 ? "sequential" : `c${c}`}`,
        value: a.cpuUsPerOp.median - b.cpuUsPerOp.median,
        pass: null,
        measured: `+${f0(a.cpuUsPerOp.median - b.cpuUsPerOp.median)} µs CPU/op (${f0(a.cpuUsPerOp.median)} vs ${f0(b.cpuUsPerOp.median)}); ${fInt(a.opsPerSec.median)} vs ${fInt(b.opsPerSec.median)} ops/s; p50 ${f0(a.p50Ms.median)} vs ${f0(b.p50Ms.median)} ms`,
      });
    }
  }
  const peak = (client) => {
    const v = res.results.filter((x) => x.client === client).map((x) => x.summary.maxRssMb);
    return v.length ? Math.max(...v) : null;
  };
  r = ratio(peak("native"), peak("realm-web"));
  add("peak RSS ≤ ½ realm-web's (max over the run's processes)", r, r <= 0.5, r === null ? "–" : `${peak("native").toFixed(0)} vs ${peak("realm-web").toFixed(0)} MB = ${r.toFixed(2)}×`);
  let worst = null;
  for (const x of res.results.filter((x) => x.client === "native")) {
    const web = res.results.find((y) => y.client === "realm-web" && y.op === x.op && y.concurrency === x.concurrency);
    if (!web) continue;
    const q = x.summary.maxRssMb / web.summary.maxRssMb;
    if (!worst || q > worst.q) worst = { q, x, web };
  }
  if (worst) {
    add("peak RSS ≤ ½ realm-web's, worst (op, mode) of the run", worst.q, worst.q <= 0.5, `${worst.x.summary.maxRssMb.toFixed(0)} vs ${worst.web.summary.maxRssMb.toFixed(0)} MB = ${worst.q.toFixed(2)}× (${OP_LABEL[worst.x.op]}, ${worst.x.concurrency === 1 ? "sequential" : "c64"})`);
  }
  if (res.load) {
    add("module load < 20 ms", res.load.native.medianMs, res.load.native.medianMs < 20, `${res.load.native.medianMs.toFixed(1)} ms`);
    add("release .node (linux-x64-gnu) < 5 MiB", res.nodeBytes, res.nodeBytes < 5 * 2 ** 20, `${(res.nodeBytes / 2 ** 20).toFixed(2)} MiB`);
  }
  return out;
}

async function main() {
  if (env.BENCH_NO_BUILD !== "1") build();
  for (const f of [emulatorBin, nodeFile, nativeEntry, ...(CLIENTS.some((c) => c.startsWith("floor")) ? [floorBin] : [])]) {
    if (!fs.existsSync(f)) throw new Error(`missing ${f}: run without BENCH_NO_BUILD`);
  }
  const loadBefore = os.loadavg();
  log(`load average ${loadBefore.map((x) => x.toFixed(2)).join(" ")}`);
  const nodeBytes = fs.statSync(nodeFile).size;
  const load = {
    native: loadTime(nativeEntry, quick ? 3 : 11),
    realmWeb: loadTime("realm-web", quick ? 3 : 11),
  };
  log(`module load: native ${load.native.medianMs.toFixed(1)} ms, realm-web ${load.realmWeb.medianMs.toFixed(1)} ms; .node ${nodeBytes} bytes`);

  const { child: emulator, baseUrl, controlToken } = await startEmulator();
  const results = [];
  try {
    const user = await prepare(baseUrl, controlToken);
    for (const op of OPS) {
      for (const concurrency of MODES) {
        // Clients take turns within one (op, mode), in ROUNDS rounds of fresh
        // processes, so that drift on this shared machine hits them alike.
        const merged = new Map();
        for (let round = 0; round < ROUNDS; round++) {
          for (const client of CLIENTS) {
            const cfg = {
              baseUrl, appId: "bench-app", email: user.email, password: user.password,
              fetchKeyId: user.fetchKeyId, toggleKeyId: user.toggleKeyId, expectKeys: user.expectKeys,
              op, concurrency, warmup: WARMUP, reps: REPS, ops: concurrency === 1 ? N_SEQ : N_C64,
              nativeEntry,
            };
            const report = runClient(client, cfg);
            report.maxRssKb ??= report.max_rss_kb;
            const prev = merged.get(client);
            if (prev) {
              prev.reps.push(...report.reps);
              prev.maxRssKb = Math.max(prev.maxRssKb, report.maxRssKb);
              prev.processes += 1;
            } else {
              merged.set(client, { ...report, client, processes: 1 });
            }
            const keys = await keyCount(baseUrl, user.auth);
            if (keys !== user.expectKeys) throw new Error(`the user has ${keys} keys after ${client} ${op}, expected ${user.expectKeys}`);
          }
        }
        for (const report of merged.values()) {
          report.summary = summarize(report);
          results.push(report);
          const s = report.summary;
          log(`${op.padEnd(13)} c${String(concurrency).padEnd(3)} ${report.client.padEnd(10)} ${fInt(s.opsPerSec.median).padStart(7)} ops/s ±${s.opsPerSec.pct.toFixed(0)}%  p50 ${f0(s.p50Ms.median)} ms  p99 ${f0(s.p99Ms.median)} ms  cpu ${f0(s.cpuUsPerOp.median)} µs/op  rss ${s.maxRssMb.toFixed(0)} MB`);
        }
      }
    }
  } finally {
    emulator.kill("SIGTERM");
  }
  const res = {
    date: new Date().toISOString(),
    machine: machine(),
    loadBefore,
    loadAfter: os.loadavg(),
    params: { clients: CLIENTS, ops: OPS, modes: MODES, rounds: ROUNDS, reps: REPS, warmup: WARMUP, nSeq: N_SEQ, nC64: N_C64, quick, nativeDir: path.relative(root, nativeDir) },
    nodeBytes,
    load,
    results,
  };
  res.targets = targets(res);
  const md = markdown(res);
  const outDir = quick ? path.join(resultsDir, "raw") : resultsDir;
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = res.date.replace(/[:.]/g, "-");
  const partial = quick || env.BENCH_CLIENTS || env.BENCH_OPS || env.BENCH_MODES;
  const base = partial ? `partial-${stamp}` : env.BENCH_NATIVE_DIR ? (env.BENCH_LABEL ?? "variant") : "latest";
  fs.writeFileSync(path.join(outDir, `${base}.json`), `${JSON.stringify(res, null, 2)}\n`);
  fs.writeFileSync(path.join(outDir, `${base}.md`), `${md}\n`);
  if (base === "latest") {
    const readme = path.join(benchDir, "README.md");
    const text = fs.readFileSync(readme, "utf8");
    const start = "<!-- results:start -->";
    const end = "<!-- results:end -->";
    const i = text.indexOf(start);
    const j = text.indexOf(end);
    if (i >= 0 && j > i) fs.writeFileSync(readme, `${text.slice(0, i + start.length)}\n${md}\n${text.slice(j)}`);
    const { writeCharts } = await import("./charts.mjs");
    for (const file of await writeCharts(res, outDir)) log(`wrote ${path.relative(root, file)}`);
  }
  console.log(md);
  if (env.BENCH_COMPARE) {
    const { compareMarkdown } = await import("./compare.mjs");
    console.log(`\n${compareMarkdown(JSON.parse(fs.readFileSync(env.BENCH_COMPARE, "utf8")), res)}`);
  }
  log(`wrote ${path.join(outDir, base)}.{json,md}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
