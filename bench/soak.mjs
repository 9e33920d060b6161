// Soak: 200,000 calls through one App against an emulator in another process,
// with the client's resident memory sampled along the way. Not part of
// `npm test`: run `npm run soak` (uses whatever addon build is at the root;
// `npm run build` first for release figures).
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(import.meta.url);
const { App, Credentials, MetadataMode } = require(join(root, "index.js"));

const TOTAL = Number(process.env.SOAK_CALLS ?? 200_000);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 16);
const WARMUP = 5_000;

// The control token, chosen here and handed over in the environment, not in argv.
const controlToken = randomBytes(24).toString("hex");
const server = spawn(process.execPath, [join(root, "bin", "realm-auth-native.js"), "emulator", "--port", "0", "--app-id", "soak", "--max-api-keys", "1000"], {
  stdio: ["ignore", "pipe", "inherit"],
  env: { ...process.env, REALM_AUTH_EMULATOR_CONTROL_TOKEN: controlToken },
});
const [line] = await once(createInterface({ input: server.stdout }), "line");
const baseUrl = /(http:\/\/\S+)/.exec(line)[1];
const control = (path, body) =>
  fetch(`${baseUrl}/_emulator/${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", authorization: `Bearer ${controlToken}` },
  });
await control("users", { email: "soak@example.com", password: "password-123" });

// Users in memory: the soak measures the calls, and writes nothing into the working directory.
const app = new App({ id: "soak", baseUrl, metadata: { mode: MetadataMode.InMemory } });
const user = await app.logIn(Credentials.emailPassword("soak@example.com", "password-123"));
const keys = [];
for (let i = 0; i < 5; i++) keys.push(await user.apiKeys.create(`soak-${i}`));

let done = 0;
let failed = 0;
/** Why calls failed: error code (or message) → count. */
const failures = new Map();
async function one(i) {
  const key = keys[i % keys.length];
  switch (i % 8) {
    case 0: {
      const extra = await user.apiKeys.create(`tmp-${i}`);
      await user.apiKeys.delete(extra._id);
      break;
    }
    case 1:
      await user.apiKeys.disable(key._id);
      await user.apiKeys.enable(key._id);
      break;
    case 2:
    case 3:
      await user.apiKeys.fetch(key._id);
      break;
    default:
      await user.apiKeys.fetchAll();
  }
}
async function run(count) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < count) {
        const i = next++;
        try {
          await one(i);
        } catch (err) {
          failed++;
          const why = err?.errorCode ?? err?.code ?? String(err);
          failures.set(why, (failures.get(why) ?? 0) + 1);
        }
        done++;
      }
    }),
  );
}

const mib = (bytes) => Math.round((bytes / 1048576) * 10) / 10;
const sample = (label) => {
  global.gc?.();
  const m = process.memoryUsage();
  return { label, calls: done, rssMiB: mib(m.rss), heapUsedMiB: mib(m.heapUsed), externalMiB: mib(m.external) };
};

await run(WARMUP);
done = 0;
const samples = [sample("start")];
const started = Date.now();
const step = TOTAL / 4;
for (let part = 1; part <= 4; part++) {
  await run(step);
  samples.push(sample(`after ${done}`));
}
const seconds = (Date.now() - started) / 1000;
server.kill("SIGTERM");
await once(server, "exit");

console.table(samples);
console.log(
  JSON.stringify({
    calls: done,
    failed,
    failures: Object.fromEntries(failures),
    seconds,
    callsPerSecond: Math.round(done / seconds),
    rssStartMiB: samples[0].rssMiB,
    rssEndMiB: samples.at(-1).rssMiB,
    node: process.version,
  }),
);
if (failed > 0) process.exitCode = 1;
