// The package's command line: `realm-auth-native emulator`.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { App, Credentials, Emulator, MetadataMode } from "realm-auth-native";

const BIN = join(__dirname, "..", "bin", "realm-auth-native.js");

describe("realm-auth-native emulator", () => {
  it("prints one line with the picked port, serves, and stops cleanly on SIGTERM", async () => {
    const child = spawn(process.execPath, [BIN, "emulator", "--port", "0", "--app-id", "cli-app"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
    const match = /^App Services emulator listening on (http:\/\/127\.0\.0\.1:(\d+)) \(app id cli-app\)$/.exec(line);
    assert.ok(match, line);
    assert.notEqual(match[2], "0");

    const app = new App({ id: "cli-app", baseUrl: match[1], metadata: { mode: MetadataMode.InMemory } });
    const user = await app.logIn(Credentials.anonymous());
    assert.equal(user.isLoggedIn, true);

    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    // Windows has no SIGTERM: kill() there ends the process without a code.
    if (process.platform !== "win32") assert.equal(code, 0);
  });

  it("refuses unknown arguments with exit code 2 and prints help on --help", () => {
    const bad = spawnSync(process.execPath, [BIN, "emulator", "--bogus"], { encoding: "utf8" });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown argument '--bogus'/);
    const help = spawnSync(process.execPath, [BIN, "emulator", "--help"], { encoding: "utf8" });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--app-id <id>/);
    const unknown = spawnSync(process.execPath, [BIN, "nope"], { encoding: "utf8" });
    assert.equal(unknown.status, 2);
  });
});

describe("realm-auth-native keys", () => {
  let emulator: Emulator;
  const email = "cli-keys@example.com";
  const password = "password-123";
  before(async () => {
    emulator = await Emulator.start();
    emulator.createUser(email, password);
  });
  after(() => emulator.stop());

  /** Runs the CLI (asynchronously: the emulator serves from this process). */
  async function keys(args: string[], options: { env?: Record<string, string>; input?: string } = {}) {
    const child = spawn(process.execPath, [BIN, "keys", ...args, "--app-id", emulator.appId, "--base-url", emulator.baseUrl], {
      env: { ...process.env, REALM_AUTH_PASSWORD: "", REALM_AUTH_API_KEY: "", ...options.env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end(options.input ?? "");
    const [status] = (await once(child, "exit")) as [number];
    return { status, stdout, stderr };
  }
  const withPassword = { env: { REALM_AUTH_PASSWORD: password } };

  it("creates, lists, disables, enables and deletes keys, with --json for scripts", async () => {
    const created = await keys(["create", "cli-key", "--email", email, "--json"], withPassword);
    assert.equal(created.status, 0, created.stderr);
    const key = JSON.parse(created.stdout) as { _id: string; key: string; name: string };
    assert.equal(key.name, "cli-key");

    const listed = await keys(["list", "--email", email, "--json"], withPassword);
    assert.deepEqual(JSON.parse(listed.stdout), [{ _id: key._id, name: "cli-key", disabled: false }]);
    assert.equal((await keys(["disable", key._id, "--email", email], withPassword)).status, 0);
    assert.match((await keys(["list", "--email", email], withPassword)).stdout, new RegExp(`${key._id}\\s+disabled\\s+cli-key`));

    // A disabled key cannot log in: exit code 3.
    const refused = await keys(["list", "--api-key-stdin"], { input: `${key.key}\n` });
    assert.equal(refused.status, 3, refused.stderr);
    assert.equal((await keys(["enable", key._id, "--email", email], withPassword)).status, 0);
    const byKey = await keys(["list", "--json"], { env: { REALM_AUTH_API_KEY: key.key } });
    assert.equal(byKey.status, 0, byKey.stderr);

    // The password from standard input works too.
    const deleted = await keys(["delete", key._id, "--email", email, "--password-stdin"], { input: `${password}\n` });
    assert.equal(deleted.status, 0, deleted.stderr);
    assert.deepEqual(JSON.parse((await keys(["list", "--email", email, "--json"], withPassword)).stdout), []);
    assert.ok(!created.stderr.includes(key.key));
  });

  it("never takes secrets from the command line, and reports usage errors with exit code 2", async () => {
    for (const args of [["list", "--password", "x"], ["list", "--api-key=abc"], ["list", "--key", "abc"]]) {
      const run = await keys(args);
      assert.equal(run.status, 2);
      assert.match(run.stderr, /not accepted/);
    }
    assert.equal((await keys(["list"])).status, 2);
    assert.equal((await keys(["frobnicate", "--email", email], withPassword)).status, 2);
    assert.equal((await keys(["create", "--email", email], withPassword)).status, 2);
    assert.equal((await keys(["enable", "not-an-id", "--email", email], withPassword)).status, 2);
  });

  it("exits 3 for a refused login and 1 for a server error", async () => {
    const wrong = await keys(["list", "--email", email], { env: { REALM_AUTH_PASSWORD: "wrong-password" } });
    assert.equal(wrong.status, 3);
    assert.match(wrong.stderr, /login failed: unauthorized/);
    const missing = await keys(["delete", "deadbeefdeadbeefdeadbeef", "--email", email], withPassword);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /API key not found/);
  });
});
