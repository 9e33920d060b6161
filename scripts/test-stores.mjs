#!/usr/bin/env node
// The tests that run once per SQL store: the server's rule tests (`cargo test -p
// realm-auth-server`, the default) or, with --js, the client's JS suite (the
// test files that start their server through `useEmulator()` or `testStore()`
// in __test__/helpers.ts, and `serve` as a process). Each runs with
// REALM_AUTH_TEST_STORE=sqlite, then =postgres against a throwaway PostgreSQL
// cluster (scripts/pg-test-cluster.sh) that is stopped and removed afterwards,
// also when a test fails. (The memory store runs in `cargo test --workspace` and
// `npm run test:js`.) Part of `npm test`; PostgreSQL comes from Debian's
// packages (`apt-get install postgresql`; .ci/run installs it when missing).
//
//   node scripts/test-stores.mjs                  # the server's tests, both stores
//   node scripts/test-stores.mjs --js postgres    # the client's, one store
//   node scripts/test-stores.mjs --js --tls sqlite   # the client's, against HTTPS servers
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cluster = join(root, "scripts", "pg-test-cluster.sh");
const args = process.argv.slice(2);
const js = args.includes("--js");
const tls = args.includes("--tls");
const named = args.filter((a) => a !== "--js" && a !== "--tls");
const stores = named.length ? named : ["sqlite", "postgres"];

/** The client's test files whose server follows REALM_AUTH_TEST_STORE. */
function clientTestFiles() {
  const dir = join(root, "__test__");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".test.ts") && /\b(useEmulator|testStore)\(/.test(readFileSync(join(dir, f), "utf8")))
    .map((f) => join("__test__", f));
}

/**
 * With --tls: a throwaway CA and a certificate it signed for 127.0.0.1 (openssl), so that the
 * servers the JS suite starts serve HTTPS (REALM_AUTH_TEST_TLS_CERT and _KEY, read by
 * __test__/helpers.ts) and the SDK and Node trust them only through the CA file.
 */
function tlsEnv() {
  if (!tls) return [{}, () => {}];
  const dir = mkdtempSync(join(tmpdir(), "realm-auth-tls-"));
  const at = (name) => join(dir, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const openssl = (...a) => execFileSync("openssl", a, { stdio: "ignore" });
  openssl("req", "-x509", ...ec, "-days", "1", "-subj", "/CN=realm-auth test CA", "-keyout", at("ca.key"), "-out", at("ca.pem"));
  openssl("req", ...ec, "-subj", "/CN=127.0.0.1", "-keyout", at("key.pem"), "-out", at("server.csr"));
  writeFileSync(at("server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  openssl("x509", "-req", "-in", at("server.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", at("server.ext"), "-out", at("cert.pem"));
  const env = {
    REALM_AUTH_TEST_TLS_CERT: at("cert.pem"),
    REALM_AUTH_TEST_TLS_KEY: at("key.pem"),
    SSL_CERT_FILE: at("ca.pem"),
    NODE_EXTRA_CA_CERTS: at("ca.pem"),
  };
  return [env, () => rmSync(dir, { recursive: true, force: true })];
}

function run(store, extraEnv) {
  const [command, commandArgs, what] = js
    ? [process.execPath, ["--import", "tsx", "--test", ...clientTestFiles()], "the client's JS suite"]
    : ["cargo", ["test", "-p", "realm-auth-server"], "the server's tests"];
  console.error(`[test-stores] ${what} with REALM_AUTH_TEST_STORE=${store}${tls ? ", over TLS" : ""}`);
  const [tlsVars, removeTls] = tlsEnv();
  let result;
  try {
    result = spawnSync(command, commandArgs, {
      cwd: root,
      stdio: "inherit",
      env: { ...process.env, REALM_AUTH_TEST_STORE: store, ...tlsVars, ...extraEnv },
    });
  } finally {
    removeTls();
  }
  if (result.status !== 0) throw new Error(`${what} failed on ${store} (${result.status ?? result.signal})`);
}

let failed = false;
for (const store of stores) {
  try {
    if (store === "postgres") {
      // `start` prints `export PG_TEST_DIR=… PG_TEST_BIN=… REALM_AUTH_TEST_PG_URL=…`.
      const exports = execFileSync(cluster, ["start"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
      const vars = Object.fromEntries([...exports.matchAll(/(\w+)='([^']*)'/g)].map((m) => [m[1], m[2]]));
      try {
        run(store, vars);
      } finally {
        spawnSync(cluster, ["stop", vars.PG_TEST_DIR], { cwd: root, stdio: "inherit" });
      }
    } else {
      run(store, {});
    }
  } catch (err) {
    console.error(`[test-stores] ${err.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
