// `realm-auth-server serve`, the production mode, as its users run it: a separate process on
// SQLite or PostgreSQL (by REALM_AUTH_TEST_STORE; SQLite when unset), set up from a config file,
// driven through this SDK only. Its control API is not mounted, and what it answered survives
// a restart.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, it } from "node:test";
import { App, Credentials, ErrorCode, MetadataMode, shutdown } from "realm-auth-native";

import { rejection, testStore } from "./helpers";

const SERVER_BIN = join(__dirname, "..", "packages", "server", "bin", "realm-auth-server.js");
const APP_ID = "serve-app";

const dir = mkdtempSync(join(tmpdir(), "realm-auth-serve-"));
// `serve` refuses a memory store: the memory run of the suite serves from SQLite.
const [options, removeStore] = process.env.REALM_AUTH_TEST_STORE ? testStore() : [{}, () => {}];
const store = options.store ?? { kind: "sqlite", path: join(dir, "auth.db") };
const config = join(dir, "server.json");
// The file names another app id: the command line's --app-id wins over it.
writeFileSync(config, JSON.stringify({ appId: "from-the-file", passwordIterations: 1000, store }));
const children = new Set<ChildProcess>();

after(() => {
  for (const child of children) child.kill("SIGKILL");
  shutdown();
  rmSync(dir, { recursive: true, force: true });
  removeStore();
});

interface Running {
  child: ChildProcess;
  baseUrl: string;
  stderr: () => string;
}

/** Starts `serve` and waits for its listening line (`--json`). */
async function serve(args: string[] = []): Promise<Running> {
  const child = spawn(process.execPath, [SERVER_BIN, "serve", "--config", config, "--app-id", APP_ID, "--json", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const lines = createInterface({ input: child.stdout! });
  const [first] = (await Promise.race([once(lines, "line"), once(child, "exit").then(() => [null])])) as [string | null];
  assert.ok(first, `serve exited before listening: ${stderr}`);
  const line = JSON.parse(first) as { baseUrl: string; appIds: string[] };
  assert.deepEqual(Object.keys(line), ["baseUrl", "appIds"]);
  assert.deepEqual(line.appIds, [APP_ID]);
  return { child, baseUrl: line.baseUrl, stderr: () => stderr };
}

/** SIGTERM, then the exit code (0: a clean stop). */
async function stop(running: Running): Promise<number | null> {
  const exited = once(running.child, "exit");
  running.child.kill("SIGTERM");
  const [code] = (await exited) as [number | null];
  return code;
}

/** Runs an admin command of the package's command line to its end. */
async function command(args: string[], input = ""): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [SERVER_BIN, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.end(input);
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

function appFor(baseUrl: string): App {
  shutdown();
  return new App({ id: APP_ID, baseUrl, metadata: { mode: MetadataMode.InMemory } });
}

describe(`realm-auth-server serve on ${store.kind}`, () => {
  it("serves every key call to the SDK, has no control API, and keeps what it answered across a restart", async () => {
    const first = await serve();
    let app = appFor(first.baseUrl);
    const email = `serve-${process.pid}@example.com`;
    await app.emailPasswordAuth.registerUser({ email, password: "password-1" });
    const user = await app.logIn(Credentials.emailPassword(email, "password-1"));
    const kept = await user.apiKeys.create("kept");
    const dropped = await user.apiKeys.create("dropped");
    assert.deepEqual(await user.apiKeys.fetch(kept._id), { _id: kept._id, name: "kept", disabled: false });
    await user.apiKeys.disable(kept._id);
    assert.equal((await user.apiKeys.fetch(kept._id)).disabled, true);
    assert.equal((await rejection(appFor(first.baseUrl).logIn(Credentials.apiKey(kept.key)))).code, ErrorCode.AuthError);
    app = appFor(first.baseUrl);
    await user.apiKeys.enable(kept._id);
    await user.apiKeys.delete(dropped._id);
    assert.deepEqual(await user.apiKeys.fetchAll(), [{ _id: kept._id, name: "kept", disabled: false }]);
    const byKey = await appFor(first.baseUrl).logIn(Credentials.apiKey(kept.key));
    assert.equal(byKey.id, user.id);

    // The control API is not there, with or without a token: 404 as any unknown path, and
    // nothing was created.
    for (const [method, path, body] of [
      ["GET", "/_emulator/", undefined],
      ["GET", "/_emulator/users", undefined],
      ["POST", "/_emulator/users", JSON.stringify({ email: "intruder@example.com", password: "password-1" })],
      ["POST", "/_emulator/reset", "{}"],
    ] as const) {
      const response = await fetch(`${first.baseUrl}${path}`, {
        method,
        headers: { "content-type": "application/json", authorization: "Bearer 0123456789abcdef0123456789abcdef" },
        body,
      });
      assert.equal(response.status, 404, `${method} ${path}`);
      await response.body?.cancel();
    }
    const intruder = await rejection(appFor(first.baseUrl).logIn(Credentials.emailPassword("intruder@example.com", "password-1")));
    assert.equal(intruder.code, ErrorCode.InvalidPassword);
    assert.equal(await stop(first), 0, first.stderr());

    // A new process on the same store and port: the user, the key and its state are there.
    const second = await serve(["--port", new URL(first.baseUrl).port]);
    const again = await appFor(second.baseUrl).logIn(Credentials.apiKey(kept.key));
    assert.equal(again.id, user.id);
    assert.deepEqual(await again.apiKeys.fetchAll(), [{ _id: kept._id, name: "kept", disabled: false }]);
    // The session opened before the restart is still valid.
    assert.equal((await user.apiKeys.fetch(kept._id)).name, "kept");
    assert.equal(await stop(second), 0, second.stderr());
  });

  it("is managed by the admin commands on its database, and sees their changes at once", async () => {
    const store = ["--config", config, "--app", APP_ID];
    assert.equal((await command(["apps", "add", APP_ID, "--config", config])).code, 0);
    const added = await command(["users", "add", ...store, "--email", `admin-${process.pid}@example.com`, "--password-stdin", "--json"], "pw-123456\n");
    assert.equal(added.code, 0, added.stderr);
    const { id } = JSON.parse(added.stdout) as { id: string };
    const created = await command(["server-keys", "create", ...store, "--name", `backend-${process.pid}`, "--json"]);
    assert.equal(created.code, 0, created.stderr);
    const { key } = JSON.parse(created.stdout) as { key: string };

    const running = await serve();
    const user = await appFor(running.baseUrl).logIn(Credentials.emailPassword(`admin-${process.pid}@example.com`, "pw-123456"));
    assert.equal(user.id, id);
    assert.equal((await appFor(running.baseUrl).logIn(Credentials.apiKey(key))).providerType, "api-key");

    // Revoked: the SDK's next call that needs the session fails.
    assert.equal((await command(["sessions", "revoke", ...store, id])).code, 0);
    assert.equal((await rejection(user.apiKeys.fetchAll())).code, ErrorCode.InvalidSession);
    // Disabled: no login at all.
    assert.equal((await command(["users", "disable", ...store, id])).code, 0);
    const refused = await rejection(appFor(running.baseUrl).logIn(Credentials.emailPassword(`admin-${process.pid}@example.com`, "pw-123456")));
    assert.equal(refused.code, ErrorCode.UserDisabled);
    assert.equal((await command(["users", "enable", ...store, id])).code, 0);
    assert.equal((await appFor(running.baseUrl).logIn(Credentials.emailPassword(`admin-${process.pid}@example.com`, "pw-123456"))).id, id);
    // Not found: exit code 3, nothing created.
    const missing = await command(["users", "disable", ...store, "0123456789abcdef01234567"]);
    assert.equal(missing.code, 3, missing.stderr);
    assert.equal(await stop(running), 0, running.stderr());
  });

  it("refuses to start without a SQL store or with the emulator's options, with exit code 2", async () => {
    for (const args of [
      ["serve"],
      ["serve", "--sqlite", join(dir, "x.db"), "--control-token-file", config],
      ["serve", "--sqlite", join(dir, "x.db"), "--data", join(dir, "x.json")],
      ["serve", "--config", join(dir, "missing.json")],
    ]) {
      const child = spawn(process.execPath, [SERVER_BIN, ...args, "--json"], { stdio: ["ignore", "pipe", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      const [code] = (await once(child, "exit")) as [number | null];
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      const failure = JSON.parse(stderr) as { code: unknown; message: string };
      assert.equal(failure.code, null, stderr);
      assert.ok(failure.message.length > 0);
    }
  });
});
