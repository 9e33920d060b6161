// Shared setup for the JS tests: an emulator per test file, an App pointed at
// it, and users registered through the SDK itself.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before } from "node:test";
import { App, Credentials, MetadataMode, shutdown, type AppConfiguration, type User } from "realm-auth-native";
import { Emulator, type EmulatorOptions } from "realm-auth-server";

export interface Env {
  emulator: Emulator;
  /**
   * A new App for the emulator with its own users and location cache, kept in
   * memory: the Apps made before are forgotten first (as realm v12's app cache
   * would otherwise share their users).
   */
  newApp(options?: Partial<AppConfiguration>): App;
  /** Registers a fresh email/password user and logs it in on `app`. */
  newUser(app: App): Promise<{ user: User; email: string; password: string }>;
}

let counter = 0;
let stores = 0;

/**
 * The store of the emulators the client tests run against, by `REALM_AUTH_TEST_STORE`: memory
 * (unset), `sqlite` (a fresh file) or `postgres` (a fresh schema of the database at
 * `REALM_AUTH_TEST_PG_URL`), so that the suite checks the SDK against the server as `serve`
 * runs it, on each backend, over HTTPS with `REALM_AUTH_TEST_TLS_CERT` and `_KEY`. The second
 * value removes what the store left behind.
 */
export function testStore({ tls = true } = {}): [EmulatorOptions, () => void] {
  const [options, cleanup] = storeOptions();
  // scripts/test-stores.mjs --tls: HTTPS with a throwaway CA the SDK trusts through SSL_CERT_FILE.
  const cert = process.env.REALM_AUTH_TEST_TLS_CERT;
  const key = process.env.REALM_AUTH_TEST_TLS_KEY;
  return [tls && cert && key ? { ...options, tlsCertFile: cert, tlsKeyFile: key } : options, cleanup];
}

function storeOptions(): [EmulatorOptions, () => void] {
  const kind = process.env.REALM_AUTH_TEST_STORE ?? "memory";
  const name = `t${process.pid}_${++stores}`;
  switch (kind) {
    case "memory":
      return [{}, () => {}];
    case "sqlite": {
      const dir = mkdtempSync(join(tmpdir(), "realm-auth-js-"));
      return [{ store: { kind: "sqlite", path: join(dir, "auth.db") } }, () => rmSync(dir, { recursive: true, force: true })];
    }
    case "postgres": {
      const url = process.env.REALM_AUTH_TEST_PG_URL;
      if (!url) throw new Error("REALM_AUTH_TEST_STORE=postgres needs REALM_AUTH_TEST_PG_URL");
      // The cluster is a throwaway one (scripts/pg-test-cluster.sh): its schemas go with it.
      return [{ store: { kind: "postgres", url, schema: name } }, () => {}];
    }
    default:
      throw new Error(`REALM_AUTH_TEST_STORE=${kind}: want memory, sqlite or postgres`);
  }
}

/**
 * Starts one emulator for the test file and stops it after the last test. `tls: false` keeps it
 * on plain HTTP in a TLS run (for tests that put their own proxies or TLS fronts before it).
 */
export function useEmulator({ tls = true } = {}): Env {
  const env = {} as Env;
  let cleanup = () => {};
  before(async () => {
    const [store, remove] = testStore({ tls });
    cleanup = remove;
    env.emulator = await Emulator.start(store);
    env.newApp = (options = {}) => {
      shutdown();
      return new App({
        id: env.emulator.appId,
        baseUrl: env.emulator.baseUrl,
        metadata: { mode: MetadataMode.InMemory },
        ...options,
      });
    };
    env.newUser = async (app) => {
      const email = `user${++counter}-${process.pid}@example.com`;
      const password = "password-123";
      await app.emailPasswordAuth.registerUser({ email, password });
      const user = await app.logIn(Credentials.emailPassword(email, password));
      return { user, email, password };
    };
  });
  after(async () => {
    await env.emulator.stop();
    cleanup();
  });
  return env;
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, any>> {
  try {
    await promise;
  } catch (err) {
    return err as Error & Record<string, any>;
  }
  throw new Error("expected the promise to reject");
}

/** Runs `__test__/fixtures/<name>` in a fresh Node process; its exit code and output. */
export async function runFixture(name: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(__dirname, "fixtures", name)], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}
