// The command lines: `realm-auth-native keys` and the server package's `realm-auth-server emulator`
// and `emulator users`, their exit codes (0 done, 1 server or network, 2 bad input, 3 login or
// control token refused) and `--json` failures.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { App, Credentials, ErrorCode, MetadataMode } from "realm-auth-native";
import { Emulator } from "realm-auth-server";

const BIN = join(__dirname, "..", "bin", "realm-auth-native.js");
const SERVER_BIN = join(__dirname, "..", "packages", "server", "bin", "realm-auth-server.js");

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a CLI to its end (asynchronously: emulators in this process keep serving meanwhile): the
 * server package's for `emulator …`, the client's for the rest, unless `bin` says which.
 */
async function cli(args: string[], options: { env?: Record<string, string>; input?: string; bin?: string } = {}): Promise<Run> {
  const bin = options.bin ?? (args[0] === "emulator" ? SERVER_BIN : BIN);
  const child = spawn(process.execPath, [bin, ...args], {
    // No secrets or emulator address from the environment of whoever runs the tests.
    env: {
      ...process.env,
      REALM_AUTH_PASSWORD: "",
      REALM_AUTH_API_KEY: "",
      REALM_AUTH_EMULATOR_HOST: "",
      REALM_AUTH_EMULATOR_CONTROL_TOKEN: "",
      REALM_AUTH_EMULATOR_CUSTOM_TOKEN_SECRET: "",
      ...options.env,
    },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  child.stdin.end(options.input ?? "");
  const [status] = (await once(child, "close")) as [number | null];
  return { status, stdout, stderr };
}

/** Asserts a `--json` failure: the exit code, nothing on stdout, one JSON object on stderr. */
function assertJsonFailure(run: Run, exitCode: number, expected: { code?: number | null; errorCode?: string | null; message?: RegExp } = {}) {
  assert.equal(run.status, exitCode, run.stderr);
  assert.equal(run.stdout, "");
  assert.ok(run.stderr.endsWith("\n") && !run.stderr.slice(0, -1).includes("\n"), `one line on stderr: ${run.stderr}`);
  const failure = JSON.parse(run.stderr) as Record<string, unknown>;
  assert.deepEqual(Object.keys(failure), ["code", "errorCode", "message"]);
  assert.ok(failure.code === null || typeof failure.code === "number");
  assert.ok(failure.errorCode === null || typeof failure.errorCode === "string");
  assert.equal(typeof failure.message, "string");
  if (expected.code !== undefined) assert.equal(failure.code, expected.code, run.stderr);
  if (expected.errorCode !== undefined) assert.equal(failure.errorCode, expected.errorCode, run.stderr);
  if (expected.message) assert.match(failure.message as string, expected.message);
  return failure;
}

/** A loopback port nothing listens on: connecting to it is refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

/** The error `Emulator.start(options)` fails with, in this process. */
async function startError(options: Parameters<typeof Emulator.start>[0]): Promise<{ code: number }> {
  try {
    await (await Emulator.start(options)).stop();
  } catch (err) {
    assert.equal(typeof (err as { code: unknown }).code, "number");
    return err as { code: number };
  }
  throw new Error("Emulator.start succeeded");
}

/** The first `count` lines a child prints on standard output. */
async function firstLines(child: ReturnType<typeof spawn>, count: number): Promise<string[]> {
  const lines: string[] = [];
  const reader = createInterface({ input: child.stdout! });
  for await (const line of reader) {
    lines.push(line);
    if (lines.length === count) break;
  }
  return lines;
}

describe("realm-auth-server emulator", () => {
  it("prints the listening line and the control token, serves, and stops cleanly on SIGTERM", async () => {
    const child = spawn(process.execPath, [SERVER_BIN, "emulator", "--port", "0", "--app-id", "cli-app"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const [line, tokenLine] = await firstLines(child, 2);
    const match = /^App Services emulator listening on (http:\/\/127\.0\.0\.1:(\d+)) \(app id cli-app\)$/.exec(line);
    assert.ok(match, line);
    assert.notEqual(match[2], "0");
    const token = /^Control token: ([0-9a-f]{48}) \(send it to \/_emulator\/ as Authorization: Bearer <token>\)$/.exec(tokenLine);
    assert.ok(token, tokenLine);

    const app = new App({ id: "cli-app", baseUrl: match[1], metadata: { mode: MetadataMode.InMemory } });
    const user = await app.logIn(Credentials.anonymous());
    assert.equal(user.isLoggedIn, true);
    // The printed token opens the control API; no token does not.
    const users = (authorization?: string) => fetch(`${match[1]}/_emulator/users`, { headers: authorization ? { authorization } : {} });
    assert.equal((await users(`Bearer ${token[1]}`)).status, 200);
    assert.equal((await users()).status, 401);

    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    // Windows has no SIGTERM: kill() there ends the process without a code.
    if (process.platform !== "win32") assert.equal(code, 0);
  });

  it("prints the listening line as JSON with --json", async () => {
    const child = spawn(process.execPath, [SERVER_BIN, "emulator", "--json", "--app-id", "cli-json"], { stdio: ["ignore", "pipe", "pipe"] });
    const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
    const listening = JSON.parse(line) as { baseUrl: string; appId: string; controlToken: string };
    assert.deepEqual(Object.keys(listening), ["baseUrl", "appId", "controlToken"]);
    assert.equal(listening.appId, "cli-json");
    assert.match(listening.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(listening.controlToken, /^[0-9a-f]{48}$/);
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    if (process.platform !== "win32") assert.equal(code, 0);
  });

  it("exits 2 for a bad flag, as text or as one JSON object", async () => {
    const bad = await cli(["emulator", "--bogus"]);
    assert.equal(bad.status, 2);
    assert.equal(bad.stdout, "");
    assert.equal(bad.stderr, "realm-auth-server: unknown argument '--bogus'\n(realm-auth-server emulator --help)\n");
    assertJsonFailure(await cli(["emulator", "--bogus", "--json"]), 2, { code: null, errorCode: null, message: /^unknown argument '--bogus'$/ });
    assertJsonFailure(await cli(["emulator", "--json", "--port", "x"]), 2, { message: /--port: 'x' is not a valid number/ });
    // Refused by the emulator when it starts: the code Emulator.start rejects with.
    const refused = await startError({ appId: "a/b" });
    assertJsonFailure(await cli(["emulator", "--json", "--app-id", "a/b"]), 2, { code: refused.code, message: /app id/ });
  });

  it("takes its secrets from files or the environment, and warns when other machines can reach it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "realm-auth-cli-"));
    try {
      const tokenFile = join(dir, "token");
      writeFileSync(tokenFile, "token-from-a-file-0123\n");
      const secretFile = join(dir, "secret");
      writeFileSync(secretFile, "secret-from-a-file\n");
      // parseArgs reads this process's environment and the files, as the command does.
      process.env.REALM_AUTH_EMULATOR_CUSTOM_TOKEN_SECRET = "secret-from-the-environment";
      try {
        const options = Emulator.parseArgs(["--control-token-file", tokenFile]);
        assert.equal(options?.customTokenSecret, "secret-from-the-environment");
        assert.equal((options as { controlToken?: string }).controlToken, "token-from-a-file-0123");
        assert.equal(Emulator.parseArgs([`--custom-token-secret-file=${secretFile}`])?.customTokenSecret, "secret-from-a-file");
      } finally {
        delete process.env.REALM_AUTH_EMULATOR_CUSTOM_TOKEN_SECRET;
      }
      assert.throws(() => Emulator.parseArgs(["--control-token-file", join(dir, "missing")]), /cannot read/);

      // Bound to every interface, given its token by the environment.
      const child = spawn(process.execPath, [SERVER_BIN, "emulator", "--json", "--host", "0.0.0.0"], {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, REALM_AUTH_EMULATOR_CONTROL_TOKEN: "token-from-the-environment" },
      });
      let stderr = "";
      child.stderr!.on("data", (d) => (stderr += d));
      const [line] = await firstLines(child, 1);
      const listening = JSON.parse(line) as { baseUrl: string; controlToken: string };
      assert.equal(listening.controlToken, "token-from-the-environment");
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
      // With --json, the warning is a JSON object too.
      const warning = JSON.parse(stderr) as { warning: string };
      assert.match(warning.warning, /listens on 0\.0\.0\.0:\d+, which other machines may reach/);

      // Without --json, Node prints it as a SecurityWarning.
      const text = spawn(process.execPath, [SERVER_BIN, "emulator", "--host", "0.0.0.0"], { stdio: ["ignore", "pipe", "pipe"] });
      let textErr = "";
      text.stderr!.on("data", (d) => (textErr += d));
      await firstLines(text, 2);
      const textExited = once(text, "exit");
      text.kill("SIGTERM");
      await textExited;
      assert.match(textErr, /\[REALM_AUTH_EMULATOR_EXPOSED\] SecurityWarning: the emulator listens on 0\.0\.0\.0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses --threads, which only the realm-auth-server binary takes, and says so in --help", async () => {
    const threads = await cli(["emulator", "--threads", "2"]);
    assert.equal(threads.status, 2);
    assert.match(threads.stderr, /--threads is taken only by the realm-auth-server binary/);
    const help = await cli(["emulator", "--help"]);
    assert.equal(help.status, 0);
    assert.equal(help.stderr, "");
    assert.match(help.stdout, /--app-id <id>/);
    assert.match(help.stdout, /--json/);
    assert.doesNotMatch(help.stdout, /^\s*--threads/m);
    assert.match(help.stdout, /docs\/EMULATOR\.md/);
    // Names this package's command, not the client's, which had it before.
    assert.match(help.stdout, /^Usage: realm-auth-server emulator \[options\]/);
    assert.doesNotMatch(help.stdout, /realm-auth-native/);
  });

  it("exits 1 when the port is taken", async () => {
    const taken: Server = createServer();
    taken.listen(0, "127.0.0.1");
    await once(taken, "listening");
    try {
      const port = String((taken.address() as { port: number }).port);
      const text = await cli(["emulator", "--port", port]);
      assert.equal(text.status, 1);
      assert.equal(text.stdout, "");
      assert.match(text.stderr, /^realm-auth-server: cannot bind the emulator's port: .+\n$/);
      const refused = await startError({ port: Number(port) });
      assertJsonFailure(await cli(["emulator", "--port", port, "--json"]), 1, { code: refused.code, message: /cannot bind/ });
    } finally {
      taken.close();
    }
  });

  it("exits 2 for an unknown or missing command, from either command line", async () => {
    for (const [bin, name, listed] of [
      [SERVER_BIN, "realm-auth-server", /emulator users <add\|list>/],
      [BIN, "realm-auth-native", /keys <action>/],
    ] as const) {
      const unknown = await cli(["nope"], { bin });
      assert.equal(unknown.status, 2);
      assert.match(unknown.stderr, new RegExp(`^${name}: unknown command 'nope'\n`));
      assertJsonFailure(await cli(["nope", "--json"], { bin }), 2, { message: /unknown command 'nope'/ });
      const none = await cli([], { bin });
      assert.equal(none.status, 2);
      assert.match(none.stderr, /Commands:/);
      const help = await cli(["--help"], { bin });
      assert.equal(help.status, 0);
      assert.match(help.stdout, listed);
    }
  });

  it("is no longer a command of realm-auth-native, which says where it went", async () => {
    const moved = await cli(["emulator", "--port", "0"], { bin: BIN });
    assert.equal(moved.status, 2);
    assert.equal(moved.stdout, "");
    assert.match(moved.stderr, /^realm-auth-native: the emulator moved to the realm-auth-server package: npx realm-auth-server emulator\n/);
    assert.doesNotMatch((await cli(["--help"], { bin: BIN })).stdout, /emulator users/);
  });
});

describe("realm-auth-native keys", () => {
  let emulator: Emulator;
  const email = "cli-keys@example.com";
  const password = "password-123";
  before(async () => {
    emulator = await Emulator.start();
    await emulator.createUser(email, password);
  });
  after(() => emulator.stop());

  function keys(args: string[], options: { env?: Record<string, string>; input?: string; baseUrl?: string } = {}) {
    return cli(["keys", ...args, "--app-id", emulator.appId, "--base-url", options.baseUrl ?? emulator.baseUrl], options);
  }
  const withPassword = { env: { REALM_AUTH_PASSWORD: password } };
  const login = ["--email", email];
  /** Each action with a well-formed argument. */
  const actions: [string, string[]][] = [
    ["list", []],
    ["create", ["cli-key-x"]],
    ["enable", ["deadbeefdeadbeefdeadbeef"]],
    ["disable", ["deadbeefdeadbeefdeadbeef"]],
    ["delete", ["deadbeefdeadbeefdeadbeef"]],
  ];

  it("exit 0: creates, lists, disables, enables and deletes keys, with --json for scripts", async () => {
    const created = await keys(["create", "cli-key", ...login, "--json"], withPassword);
    assert.equal(created.status, 0, created.stderr);
    const key = JSON.parse(created.stdout) as { _id: string; key: string; name: string };
    assert.equal(key.name, "cli-key");

    const listed = await keys(["list", ...login, "--json"], withPassword);
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), [{ _id: key._id, name: "cli-key", disabled: false }]);
    const disabled = await keys(["disable", key._id, ...login, "--json"], withPassword);
    assert.equal(disabled.status, 0, disabled.stderr);
    assert.deepEqual(JSON.parse(disabled.stdout), { _id: key._id, action: "disable" });
    assert.match((await keys(["list", ...login], withPassword)).stdout, new RegExp(`${key._id}\\s+disabled\\s+cli-key`));

    // A disabled key cannot log in: exit code 3.
    const refused = await keys(["list", "--api-key-stdin", "--json"], { input: `${key.key}\n` });
    assertJsonFailure(refused, 3, { code: ErrorCode.AuthError, errorCode: "AuthError", message: /^login failed: / });
    assert.equal((await keys(["enable", key._id, ...login], withPassword)).status, 0);
    const byKey = await keys(["list", "--json"], { env: { REALM_AUTH_API_KEY: key.key } });
    assert.equal(byKey.status, 0, byKey.stderr);

    // The password from standard input works too.
    const deleted = await keys(["delete", key._id, ...login, "--password-stdin"], { input: `${password}\n` });
    assert.equal(deleted.status, 0, deleted.stderr);
    assert.equal(deleted.stdout, `deleted ${key._id}\n`);
    assert.deepEqual(JSON.parse((await keys(["list", ...login, "--json"], withPassword)).stdout), []);
    assert.ok(!created.stderr.includes(key.key));
  });

  it("exit 1: the network failed, for every action (connection refused, in plain words)", async () => {
    const baseUrl = `http://127.0.0.1:${await closedPort()}`;
    for (const [action, rest] of actions) {
      const run = await keys([action, ...rest, ...login, "--json"], { ...withPassword, baseUrl });
      assertJsonFailure(run, 1, { code: ErrorCode.NetworkError, errorCode: null, message: /^login failed: request to .* failed, reason: connection refused$/ });
    }
    // As text: one line, no stack, no retry log lines.
    const text = await keys(["list", ...login], { ...withPassword, baseUrl });
    assert.equal(text.status, 1);
    assert.equal(text.stdout, "");
    assert.equal(
      text.stderr,
      `realm-auth-native: login failed: request to ${baseUrl}/api/client/v2.0/app/${emulator.appId}/location failed, reason: connection refused\n`,
    );
  });

  it("exit 1: the server failed or refused the operation, for every action", async () => {
    emulator.injectFault({
      method: "GET",
      path: "auth/api_keys",
      times: 0,
      action: { type: "respond", status: 500, body: JSON.stringify({ error: "boom", error_code: "InternalServerError" }) },
    });
    try {
      assertJsonFailure(await keys(["list", ...login, "--json"], withPassword), 1, { code: ErrorCode.InternalServerError, errorCode: "InternalServerError" });
    } finally {
      emulator.clearFaults();
    }
    assert.equal((await keys(["create", "cli-dup", ...login], withPassword)).status, 0);
    const duplicate = await keys(["create", "cli-dup", ...login, "--json"], withPassword);
    assertJsonFailure(duplicate, 1, { code: ErrorCode.APIKeyAlreadyExists, errorCode: "APIKeyAlreadyExists" });
    for (const action of ["enable", "disable", "delete"]) {
      const missing = await keys([action, "deadbeefdeadbeefdeadbeef", ...login, "--json"], withPassword);
      assertJsonFailure(missing, 1, { code: ErrorCode.APIKeyNotFound, errorCode: "APIKeyNotFound", message: /API key not found/ });
    }
    const text = await keys(["delete", "deadbeefdeadbeefdeadbeef", ...login], withPassword);
    assert.equal(text.status, 1);
    assert.equal(text.stderr, "realm-auth-native: API key not found\n");
  });

  it("exit 2: bad input, for every action", async () => {
    for (const [action, rest] of actions) {
      // An unknown flag and a missing --app-id are refused before anything is sent.
      assertJsonFailure(await keys([action, ...rest, ...login, "--bogus", "--json"], withPassword), 2, { code: null, message: /unknown argument '--bogus'/ });
      const noAppId = await cli(["keys", action, ...rest, ...login, "--json"], withPassword);
      assertJsonFailure(noAppId, 2, { message: /--app-id is required/ });
    }
    // Arguments: missing, extra, or refused by the server or the SDK.
    assertJsonFailure(await keys(["list", "extra", ...login, "--json"], withPassword), 2, { message: /list takes no argument/ });
    assertJsonFailure(await keys(["create", ...login, "--json"], withPassword), 2, { message: /create needs one name/ });
    const badName = await keys(["create", "bad name!", ...login, "--json"], withPassword);
    assertJsonFailure(badName, 2, { code: ErrorCode.InvalidParameter, errorCode: "InvalidParameter", message: /API key name/ });
    for (const action of ["enable", "disable", "delete"]) {
      assertJsonFailure(await keys([action, ...login, "--json"], withPassword), 2, { message: new RegExp(`${action} needs one key id`) });
      const badId = await keys([action, "not-an-id", ...login, "--json"], withPassword);
      assertJsonFailure(badId, 2, { code: ErrorCode.InvalidArgument, errorCode: null, message: /24 hex/ });
    }
    // As text: the message and where the help is.
    const text = await keys(["create", "bad name!", ...login], withPassword);
    assert.equal(text.status, 2);
    assert.match(text.stderr, /^realm-auth-native: API key name can only contain .*\n\(realm-auth-native keys --help\)\n$/);
  });

  it("exit 2: never takes secrets from the command line; no credentials; a bad --timeout or base URL", async () => {
    for (const args of [["list", "--password", "x"], ["list", "--api-key=abc"], ["list", "--key", "abc"]]) {
      const run = await keys(args);
      assert.equal(run.status, 2);
      assert.match(run.stderr, /not accepted/);
    }
    assertJsonFailure(await keys(["list", "--password=x", "--json"]), 2, { message: /--password is not accepted/ });
    assertJsonFailure(await keys(["list", "--json"]), 2, { message: /no credentials/ });
    assertJsonFailure(await keys(["list", ...login, "--json"]), 2, { message: /no password/ });
    assertJsonFailure(await keys(["frobnicate", ...login, "--json"], withPassword), 2, { message: /unknown action 'frobnicate'/ });
    assertJsonFailure(await keys(["list", ...login, "--timeout", "soon", "--json"], withPassword), 2, { message: /--timeout/ });
    assertJsonFailure(await keys(["list", ...login, "--json"], { ...withPassword, baseUrl: "ftp://example.com" }), 2, { code: ErrorCode.InvalidArgument });
  });

  it("exit 3: the login is refused, for every action", async () => {
    const wrong = { env: { REALM_AUTH_PASSWORD: "wrong-password" } };
    for (const [action, rest] of actions) {
      const run = await keys([action, ...rest, ...login, "--json"], wrong);
      assertJsonFailure(run, 3, { code: ErrorCode.InvalidPassword, errorCode: "InvalidPassword", message: /^login failed: unauthorized$/ });
    }
    const text = await keys(["list", ...login], wrong);
    assert.equal(text.status, 3);
    assert.equal(text.stderr, "realm-auth-native: login failed: unauthorized\n");
    // An API key that does not exist: AuthError.
    assertJsonFailure(await keys(["list", "--json"], { env: { REALM_AUTH_API_KEY: "no-such-key" } }), 3, { code: ErrorCode.AuthError });
  });
});

describe("realm-auth-server emulator users", () => {
  let emulator: Emulator;
  before(async () => {
    emulator = await Emulator.start();
  });
  after(() => emulator.stop());

  /** `emulator users ...` against the emulator, its control token in the environment. */
  function users(args: string[], options: { env?: Record<string, string>; input?: string; baseUrl?: string } = {}) {
    const env = { REALM_AUTH_EMULATOR_CONTROL_TOKEN: emulator.controlToken, ...options.env };
    return cli(["emulator", "users", ...args, "--base-url", options.baseUrl ?? emulator.baseUrl], { ...options, env });
  }

  it("exit 0: adds a user that can log in, the password from the environment or standard input", async () => {
    const added = await users(["add", "--email", "cli-user@example.com", "--json"], { env: { REALM_AUTH_PASSWORD: "password-123" } });
    assert.equal(added.status, 0, added.stderr);
    const user = JSON.parse(added.stdout) as { id: string; email: string };
    assert.equal(user.email, "cli-user@example.com");
    assert.match(user.id, /^[0-9a-f]{24}$/);

    const stdin = await users(["add", "--email", "cli-stdin@example.com", "--password-stdin"], { input: "password-456\n" });
    assert.equal(stdin.status, 0, stdin.stderr);
    assert.match(stdin.stdout, /^created [0-9a-f]{24} \(cli-stdin@example\.com\)\n$/);

    const app = new App({ id: emulator.appId, baseUrl: emulator.baseUrl, metadata: { mode: MetadataMode.InMemory } });
    const loggedIn = await app.logIn(Credentials.emailPassword("cli-user@example.com", "password-123"));
    assert.equal(loggedIn.id, user.id);
    await loggedIn.logOut();
    await (await app.logIn(Credentials.emailPassword("cli-stdin@example.com", "password-456"))).logOut();

    // $REALM_AUTH_EMULATOR_HOST (a host:port) stands in for --base-url.
    const byEnv = await cli(["emulator", "users", "add", "--email", "cli-env@example.com", "--json"], {
      env: {
        REALM_AUTH_PASSWORD: "password-123",
        REALM_AUTH_EMULATOR_HOST: emulator.baseUrl.replace("http://", ""),
        REALM_AUTH_EMULATOR_CONTROL_TOKEN: emulator.controlToken,
      },
    });
    assert.equal(byEnv.status, 0, byEnv.stderr);
  });

  it("lists users (GET /_emulator/users)", async () => {
    await emulator.createUser("cli-listed@example.com", "password-123");
    const listed = await users(["list", "--json"]);
    assert.equal(listed.status, 0, listed.stderr);
    const list = JSON.parse(listed.stdout) as { id: string; email?: string }[];
    assert.ok(list.some((u) => u.email === "cli-listed@example.com"), listed.stdout);
    const text = await users(["list"]);
    assert.match(text.stdout, /^[0-9a-f]{24} {2}cli-listed@example\.com$/m);
  });

  it("exit 1: the emulator refused (the email is taken) or could not be reached", async () => {
    await emulator.createUser("cli-taken@example.com", "password-123");
    const taken = await users(["add", "--email", "cli-taken@example.com", "--json"], { env: { REALM_AUTH_PASSWORD: "password-123" } });
    assertJsonFailure(taken, 1, { message: /already exists|in use/ });

    const baseUrl = `http://127.0.0.1:${await closedPort()}`;
    for (const args of [["add", "--email", "a@example.com"], ["list"]]) {
      const run = await users([...args, "--json"], { env: { REALM_AUTH_PASSWORD: "password-123" }, baseUrl });
      assertJsonFailure(run, 1, { code: ErrorCode.NetworkError, errorCode: null, message: /^request to .*\/_emulator\/users failed, reason: connection refused$/ });
    }
    const text = await users(["list"], { baseUrl });
    assert.equal(text.status, 1);
    assert.equal(text.stderr, `realm-auth-server: request to ${baseUrl}/_emulator/users failed, reason: connection refused\n`);
  });

  it("sends the control token from a file, and exits 3 without the right one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "realm-auth-cli-"));
    try {
      const file = join(dir, "token");
      writeFileSync(file, `${emulator.controlToken}\n`);
      const listed = await users(["list", "--json", "--control-token-file", file], { env: { REALM_AUTH_EMULATOR_CONTROL_TOKEN: "" } });
      assert.equal(listed.status, 0, listed.stderr);
      writeFileSync(file, "a-wrong-token-0123456789");
      const wrong = await users(["list", "--json", "--control-token-file", file]);
      assertJsonFailure(wrong, 3, { code: 4918, errorCode: "Unauthorized", message: /^wrong control token$/ });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const wrong = await users(["list"], { env: { REALM_AUTH_EMULATOR_CONTROL_TOKEN: "another-token-0123456789" } });
    assert.equal(wrong.status, 3);
    assert.equal(wrong.stderr, "realm-auth-server: wrong control token\n");
  });

  it("exit 3: the control API refuses the request (401 or 403)", async () => {
    // A stand-in on loopback refuses both ways.
    const stub = createHttpServer((req, res) => {
      req.resume();
      res.statusCode = req.method === "GET" ? 401 : 403;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ error: "control token required", error_code: "Unauthorized" }));
    });
    stub.listen(0, "127.0.0.1");
    await once(stub, "listening");
    try {
      const baseUrl = `http://127.0.0.1:${(stub.address() as { port: number }).port}`;
      const add = await users(["add", "--email", "a@example.com", "--json"], { env: { REALM_AUTH_PASSWORD: "password-123" }, baseUrl });
      assertJsonFailure(add, 3, { code: null, errorCode: "Unauthorized", message: /^control token required$/ });
      const list = await users(["list"], { baseUrl });
      assert.equal(list.status, 3);
      assert.equal(list.stderr, "realm-auth-server: control token required\n");
    } finally {
      stub.closeAllConnections();
      stub.close();
    }
  });

  it("exit 2: bad input, and never a password from the command line", async () => {
    const pw = { env: { REALM_AUTH_PASSWORD: "password-123" } };
    const short = await users(["add", "--email", "cli-short@example.com", "--json"], { env: { REALM_AUTH_PASSWORD: "x" } });
    assertJsonFailure(short, 2, { errorCode: "InvalidArgument", message: /password/ });
    assertJsonFailure(await users(["add", "--email", "a@example.com", "--password", "password-123", "--json"]), 2, { message: /--password is not accepted/ });
    assertJsonFailure(await users(["add", "--json"], pw), 2, { message: /--email is required/ });
    assertJsonFailure(await users(["add", "--email", "a@example.com", "--json"]), 2, { message: /no password/ });
    assertJsonFailure(await users(["rename", "--json"]), 2, { message: /unknown action 'rename'/ });
    assertJsonFailure(await users(["list", "--bogus", "--json"]), 2, { message: /unknown argument '--bogus'/ });
    assertJsonFailure(await users(["list", "--json"], { baseUrl: "ftp://example.com" }), 2, { message: /not an http/ });
    assertJsonFailure(await cli(["emulator", "users", "list", "--json"]), 2, { message: /--base-url is required/ });
    assertJsonFailure(await users(["list", "--json"], { env: { REALM_AUTH_EMULATOR_CONTROL_TOKEN: "" } }), 2, {
      message: /^no control token: set REALM_AUTH_EMULATOR_CONTROL_TOKEN or pass --control-token-file/,
    });
    assertJsonFailure(await users(["list", "--control-token", emulator.controlToken, "--json"]), 2, { message: /--control-token is not accepted/ });
    assertJsonFailure(await users(["list", "--control-token-file", "/nonexistent/token", "--json"]), 2, { message: /cannot read '\/nonexistent\/token'/ });
    const text = await users(["add", "--email", "a@example.com"]);
    assert.equal(text.status, 2);
    assert.equal(text.stderr, "realm-auth-server: no password: set REALM_AUTH_PASSWORD or pass --password-stdin\n(realm-auth-server emulator users --help)\n");
  });
});

describe("help texts and the READMEs", () => {
  /** The long flags a text names. */
  const flags = (text: string) => new Set(text.match(/--[a-z][a-z-]*/g) ?? []);
  /** The part of a README from `## <first>` to the next `## ` heading. */
  const section = (file: string, first: string) => {
    const readme = readFileSync(file, "utf8");
    const start = readme.indexOf(`\n## ${first}`);
    const end = readme.indexOf("\n## ", start + 1);
    assert.ok(start > 0 && end > start, `${file} has a section ${first}`);
    return readme.slice(start, end);
  };

  it("the client's README names the flags of keys, and only flags a help text has", async () => {
    const keysHelp = (await cli(["keys", "--help"])).stdout;
    const text = section(join(__dirname, "..", "README.md"), "Command line");
    for (const flag of flags(keysHelp)) assert.ok(text.includes(flag), `README lacks ${flag}`);
    for (const flag of flags(text)) assert.ok(flags(keysHelp).has(flag), `README names ${flag}, keys --help does not`);
  });

  it("the server's README names the flags of emulator users, and only flags a help text has", async () => {
    const usersHelp = (await cli(["emulator", "users", "--help"])).stdout;
    const emulatorHelp = (await cli(["emulator", "--help"])).stdout;
    const text = section(join(__dirname, "..", "packages", "server", "README.md"), "Running the server");
    for (const flag of flags(usersHelp)) assert.ok(text.includes(flag), `the server's README lacks ${flag}`);
    const known = new Set([...flags(usersHelp), ...flags(emulatorHelp)]);
    for (const flag of flags(text)) {
      // --release is cargo's, in the line that builds the binary; --threads is the binary's alone.
      if (flag === "--threads" || flag === "--release") continue;
      assert.ok(known.has(flag), `the server's README names ${flag}, no help text does`);
    }
    assert.match(text, /realm-auth-server.*--threads/s);
    assert.ok(!known.has("--threads") || /realm-auth-server binary also takes --threads/.test(emulatorHelp));
  });
});
