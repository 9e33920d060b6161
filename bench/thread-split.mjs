// Splits the addon's CPU per call between its threads (the JS thread, the
// tokio worker, V8's helpers), from /proc/self/task/*/stat, at concurrency 64.
// A diagnostic for bench/README.md, Linux only; run it pinned to one core:
//   taskset -c 1 node bench/thread-split.mjs [op] [calls] [addon dir]
// op: fetchAll (default), enableDisable, login (users in memory only) or
// loginStored (users in a user store in a temporary folder); addon dir: bench/.build (the
// release build `npm run bench` makes). Starts its own emulator on core 0.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const [op = "fetchAll", callsArg = "30000", dir = path.join(benchDir, ".build")] = process.argv.slice(2);
const calls = Number(callsArg);
const emulatorBin = path.join(process.env.BENCH_TARGET_DIR ?? path.join(benchDir, ".build", "target"), "release", "realm-auth-server");
// The control token, chosen here and handed over in the environment, not in argv.
const controlToken = randomBytes(24).toString("hex");
const emulator = spawn("taskset", ["-c", "0", emulatorBin, "--port", "0", "--app-id", "bench-app", "--threads", "1", "--password-iterations", "1"], {
  stdio: ["ignore", "pipe", "inherit"],
  env: { ...process.env, REALM_AUTH_EMULATOR_CONTROL_TOKEN: controlToken },
});
// loginStored's user store; removed at the end whatever happens.
const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), "thread-split-"));
try {
  const baseUrl = await new Promise((resolve, reject) => {
    let out = "";
    emulator.on("exit", (code) => reject(new Error(`emulator exited (${code})`)));
    emulator.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
  });
  const { App, Credentials, MetadataMode } = createRequire(import.meta.url)(path.resolve(dir, "index.js"));
  const email = "split@example.com";
  const password = "split-password-1";
  const made = await fetch(`${baseUrl}/_emulator/users`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${controlToken}` },
    body: JSON.stringify({ email, password }),
  });
  if (!made.ok) throw new Error(`creating the user: ${made.status}`);
  // Apps with one id and URL share their users: one App per process, so
  // loginStored's is the only one with a store.
  const app =
    op === "loginStored"
      ? new App({ id: "bench-app", baseUrl, baseFilePath: storeDir })
      : new App({ id: "bench-app", baseUrl, metadata: { mode: MetadataMode.InMemory } });
  const keys = (await app.logIn(Credentials.emailPassword(email, password))).apiKeys;
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await keys.create(`split-${i}`))._id);
  const credentials = Credentials.emailPassword(email, password);
  const ops = {
    fetchAll: () => keys.fetchAll(),
    enableDisable: (i) => (i % 2 ? keys.enable(ids[1]) : keys.disable(ids[1])),
    login: () => app.logIn(credentials),
    loginStored: () => app.logIn(credentials),
  };
  const call = ops[op];
  if (!call) throw new Error(`unknown op ${op}`);

  const batch = async (n) => {
    let next = 0;
    const loop = async () => {
      for (let i = next++; i < n; i = next++) await call(i);
    };
    await Promise.all(Array.from({ length: 64 }, loop));
  };
  // CPU seconds per thread (utime + stime, in clock ticks of 1/100 s).
  const threads = () => {
    const out = new Map();
    for (const tid of fs.readdirSync("/proc/self/task")) {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(`${name} (${tid})`, (Number(fields[11]) + Number(fields[12])) / 100);
    }
    return out;
  };

  await batch(2000);
  for (let rep = 0; rep < 3; rep++) {
    const before = threads();
    const cpu0 = process.cpuUsage();
    await batch(calls);
    const cpu = process.cpuUsage(cpu0);
    const split = [...threads()]
      .map(([name, s]) => [name, ((s - (before.get(name) ?? 0)) * 1e6) / calls])
      .filter(([, us]) => us >= 0.1)
      .map(([name, us]) => `${name} ${us.toFixed(1)}`);
    console.log(`${op}: ${((cpu.user + cpu.system) / calls).toFixed(1)} µs/call; per thread (µs/call): ${split.join(", ")}`);
  }
} finally {
  emulator.kill();
  fs.rmSync(storeDir, { recursive: true, force: true });
}
