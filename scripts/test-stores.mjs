#!/usr/bin/env node
// The server's rule tests on its SQL stores: `cargo test -p realm-auth-server`
// again with REALM_AUTH_TEST_STORE=sqlite, then =postgres against a throwaway
// PostgreSQL cluster (scripts/pg-test-cluster.sh) that is stopped and removed
// afterwards, also when a test fails. (The memory store runs in `cargo test
// --workspace`.) Part of `npm test`; PostgreSQL comes from Debian's packages
// (`apt-get install postgresql`; .ci/run installs it when missing).
//
//   node scripts/test-stores.mjs              # both
//   node scripts/test-stores.mjs sqlite       # one
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cluster = join(root, "scripts", "pg-test-cluster.sh");
const stores = process.argv.slice(2).length ? process.argv.slice(2) : ["sqlite", "postgres"];

function cargoTest(store, extraEnv = {}) {
  console.error(`[test-stores] cargo test -p realm-auth-server with REALM_AUTH_TEST_STORE=${store}`);
  const run = spawnSync("cargo", ["test", "-p", "realm-auth-server"], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, REALM_AUTH_TEST_STORE: store, ...extraEnv },
  });
  if (run.status !== 0) throw new Error(`the server's tests failed on ${store} (${run.status ?? run.signal})`);
}

let failed = false;
for (const store of stores) {
  try {
    if (store === "postgres") {
      // `start` prints `export PG_TEST_DIR=… PG_TEST_BIN=… REALM_AUTH_TEST_PG_URL=…`.
      const exports = execFileSync(cluster, ["start"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
      const vars = Object.fromEntries([...exports.matchAll(/(\w+)='([^']*)'/g)].map((m) => [m[1], m[2]]));
      try {
        cargoTest(store, vars);
      } finally {
        spawnSync(cluster, ["stop", vars.PG_TEST_DIR], { cwd: root, stdio: "inherit" });
      }
    } else {
      cargoTest(store);
    }
  } catch (err) {
    console.error(`[test-stores] ${err.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
