// The emulator as a tool you can discover: `GET /_emulator/` lists its control
// routes, every control method fails with a documented numeric code (also
// once stopped), and the request log shows what faults did to each request.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Emulator, EmulatorErrorCode, isRealmAuthError } from "realm-auth-native";

/** What a sync call throws (fails the test if it returns). */
function thrown(call: () => unknown): Error & Record<string, any> {
  try {
    call();
  } catch (err) {
    return err as Error & Record<string, any>;
  }
  throw new Error("expected the call to throw");
}

/** Asserts an emulator error: its class, numeric code and message. */
function assertEmulatorError(err: Error & Record<string, any>, code: EmulatorErrorCode, message: RegExp | string, typeError = false): void {
  assert.ok(err instanceof Error, String(err));
  assert.equal(err instanceof TypeError, typeError, `${err.message}: TypeError?`);
  assert.ok(isRealmAuthError(err), `${err.message}: branded like the SDK's other errors`);
  assert.equal(err.code, code, err.message);
  assert.equal(typeof err.code, "number");
  if (typeof message === "string") assert.equal(err.message, message);
  else assert.match(err.message, message);
}

let emulator: Emulator;
let counter = 0;
const newEmail = () => `emu${++counter}-${process.pid}@example.com`;
const UNKNOWN_ID = "0123456789abcdef01234567";

before(async () => {
  emulator = await Emulator.start();
});

after(async () => {
  await emulator.stop();
});

describe("GET /_emulator/", () => {
  it("lists the control routes with one-line descriptions, the error codes and the guide", async () => {
    const response = await fetch(`${emulator.baseUrl}/_emulator/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    const index = (await response.json()) as {
      routes: { method: string; path: string; description: string }[];
      errorCodes: { code: number; name: string; description: string }[];
      guide: string;
    };
    assert.equal(index.guide, "docs/EMULATOR.md");
    const listed = index.routes.map((r) => `${r.method} ${r.path}`);
    for (const route of [
      "GET /_emulator/",
      "GET /_emulator/info",
      "POST /_emulator/users",
      "POST /_emulator/server-api-keys",
      "GET /_emulator/faults",
      "POST /_emulator/faults",
      "DELETE /_emulator/faults",
      "DELETE /_emulator/faults/:id",
      "POST /_emulator/tokens/expire",
      "POST /_emulator/users/:id/revoke",
      "PUT /_emulator/users/:id/custom-data",
      "GET /_emulator/requests",
      "DELETE /_emulator/requests",
      "POST /_emulator/reset",
      "POST /_emulator/flush",
    ]) {
      assert.ok(listed.includes(route), `${route} is listed`);
    }
    for (const route of index.routes) {
      assert.ok(route.description.length > 0 && !route.description.includes("\n"), `${route.path}: one line`);
    }
    // The codes are EmulatorErrorCode's, names included.
    for (const { code, name } of index.errorCodes) {
      assert.equal(EmulatorErrorCode[name as keyof typeof EmulatorErrorCode], code, name);
    }
    assert.equal(index.errorCodes.length, Object.keys(EmulatorErrorCode).filter((k) => Number.isNaN(Number(k))).length);
    // Without the trailing slash too.
    assert.deepEqual(await (await fetch(`${emulator.baseUrl}/_emulator`)).json(), index);
  });

  it("answers control errors over HTTP with the same numeric codes", async () => {
    const email = newEmail();
    const post = (path: string, body?: unknown) =>
      fetch(`${emulator.baseUrl}/_emulator${path}`, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });
    assert.equal((await post("/users", { email, password: "pw-123456" })).status, 201);
    let response = await post("/users", { email, password: "pw-123456" });
    assert.equal(response.status, 409);
    assert.deepEqual(await response.json(), {
      error: `a user with email '${email}' already exists`,
      error_code: "Conflict",
      code: EmulatorErrorCode.EmulatorUserExists,
    });
    response = await post(`/users/${UNKNOWN_ID}/revoke`);
    assert.equal(response.status, 404);
    assert.deepEqual(await response.json(), {
      error: `no user with id '${UNKNOWN_ID}'`,
      error_code: "NotFound",
      code: EmulatorErrorCode.EmulatorUserNotFound,
    });
    response = await post("/users", { email: newEmail(), password: "short" });
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { code: number }).code, EmulatorErrorCode.EmulatorBadRequest);
    response = await fetch(`${emulator.baseUrl}/_emulator/nope`);
    assert.equal(response.status, 404);
    const body = (await response.json()) as { error: string; code: number };
    assert.equal(body.code, EmulatorErrorCode.EmulatorNotFound);
    assert.match(body.error, /GET \/_emulator\/ lists them/);
  });
});

describe("control method errors", () => {
  it("createUser: a taken email is EmulatorUserExists, bad input a TypeError", () => {
    const email = newEmail();
    emulator.createUser(email, "pw-123456");
    assertEmulatorError(thrown(() => emulator.createUser(email, "pw-123456")), EmulatorErrorCode.EmulatorUserExists, `a user with email '${email}' already exists`);
    assertEmulatorError(thrown(() => emulator.createUser(newEmail(), "short")), EmulatorErrorCode.EmulatorBadRequest, "password must be between 6 and 128 characters", true);
    assertEmulatorError(thrown(() => emulator.createUser(" ", "pw-123456")), EmulatorErrorCode.EmulatorBadRequest, "email must not be empty", true);
  });

  it("revokeSessions and setCustomData: an unknown user is EmulatorUserNotFound", () => {
    const message = `no user with id '${UNKNOWN_ID}'`;
    assertEmulatorError(thrown(() => emulator.revokeSessions(UNKNOWN_ID)), EmulatorErrorCode.EmulatorUserNotFound, message);
    assertEmulatorError(thrown(() => emulator.setCustomData(UNKNOWN_ID, { a: 1 })), EmulatorErrorCode.EmulatorUserNotFound, message);
    const user = emulator.createUser(newEmail(), "pw-123456");
    emulator.revokeSessions(user.id);
    assertEmulatorError(thrown(() => emulator.setCustomData(user.id, [1] as never)), EmulatorErrorCode.EmulatorBadRequest, "custom data must be a JSON object", true);
  });

  it("createServerApiKey: a taken name is EmulatorConflict, a bad name a TypeError", () => {
    const name = `svc-${process.pid}`;
    emulator.createServerApiKey(name);
    assertEmulatorError(thrown(() => emulator.createServerApiKey(name)), EmulatorErrorCode.EmulatorConflict, "API key already exists");
    assertEmulatorError(thrown(() => emulator.createServerApiKey("no spaces")), EmulatorErrorCode.EmulatorBadRequest, /API key name/, true);
  });

  it("injectFault: an invalid fault is a TypeError", () => {
    assertEmulatorError(thrown(() => emulator.injectFault({ path: "x" } as never)), EmulatorErrorCode.EmulatorBadRequest, /^invalid fault: /, true);
    assertEmulatorError(
      thrown(() => emulator.injectFault({ path: "x", action: { type: "respond", status: 100 } })),
      EmulatorErrorCode.EmulatorBadRequest,
      "status 100 is not between 200 and 999",
      true,
    );
  });

  it("Emulator.start and parseArgs: bad options are TypeErrors, a taken port EmulatorBindFailed, a foreign data file EmulatorDataFile", async () => {
    const rejected = async (promise: Promise<unknown>) => {
      try {
        const started = (await promise) as Emulator;
        await started.stop();
      } catch (err) {
        return err as Error & Record<string, any>;
      }
      throw new Error("expected Emulator.start to reject");
    };
    assertEmulatorError(await rejected(Emulator.start({ port: "x" } as never)), EmulatorErrorCode.EmulatorBadRequest, /^invalid emulator options: /, true);
    assertEmulatorError(await rejected(Emulator.start({ appId: "a/b" })), EmulatorErrorCode.EmulatorBadRequest, /app id must be non-empty/, true);
    assertEmulatorError(await rejected(Emulator.start({ port: emulator.port })), EmulatorErrorCode.EmulatorBindFailed, /^cannot bind the emulator's port: /);
    const dir = mkdtempSync(join(tmpdir(), "realm-auth-emulator-"));
    try {
      const file = join(dir, "state.json");
      writeFileSync(file, "not an emulator data file");
      assertEmulatorError(await rejected(Emulator.start({ dataFile: file })), EmulatorErrorCode.EmulatorDataFile, /^emulator data file: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assertEmulatorError(thrown(() => Emulator.parseArgs(["--port", "x"])), EmulatorErrorCode.EmulatorBadRequest, /--port/, true);
  });
});

describe("a stopped emulator", () => {
  it("fails every method clearly with EmulatorStopped; stop() twice is fine", async () => {
    const stopped = await Emulator.start();
    const user = stopped.createUser(newEmail(), "pw-123456");
    const { baseUrl, appId, port } = stopped;
    await stopped.stop();
    await stopped.stop();
    const message = `the emulator at ${baseUrl} is stopped: start a new one with Emulator.start()`;
    const calls: Record<string, () => unknown> = {
      createUser: () => stopped.createUser(newEmail(), "pw-123456"),
      createServerApiKey: () => stopped.createServerApiKey("svc"),
      injectFault: () => stopped.injectFault({ path: "*", action: { type: "drop" } }),
      clearFaults: () => stopped.clearFaults(),
      expireAccessTokens: () => stopped.expireAccessTokens(),
      revokeSessions: () => stopped.revokeSessions(user.id),
      setCustomData: () => stopped.setCustomData(user.id, {}),
      requests: () => stopped.requests(),
      clearRequests: () => stopped.clearRequests(),
      pendingConfirmation: () => stopped.pendingConfirmation(user.email),
      pendingReset: () => stopped.pendingReset(user.email),
      reset: () => stopped.reset(),
      listeningLine: () => stopped.listeningLine(),
    };
    // Every method of the class is covered.
    const methods = Object.getOwnPropertyNames(Emulator.prototype).filter((name) => {
      const descriptor = Object.getOwnPropertyDescriptor(Emulator.prototype, name)!;
      return typeof descriptor.value === "function" && !["constructor", "stop", "inspectFields"].includes(name) && !name.startsWith("_");
    });
    assert.deepEqual(methods.filter((m) => !(m in calls)), []);
    for (const [name, call] of Object.entries(calls)) {
      const err = thrown(call);
      assertEmulatorError(err, EmulatorErrorCode.EmulatorStopped, message);
      assert.ok(err.stack, name);
    }
    // The getters still say where it was.
    assert.deepEqual({ baseUrl: stopped.baseUrl, appId: stopped.appId, port: stopped.port }, { baseUrl, appId, port });
  });

  it("fails right after an un-awaited stop()", async () => {
    const stopped = await Emulator.start();
    const stopping = stopped.stop();
    assertEmulatorError(thrown(() => stopped.requests()), EmulatorErrorCode.EmulatorStopped, /is stopped/);
    await stopping;
  });
});

describe("the request log", () => {
  const location = () => `${emulator.baseUrl}/api/client/v2.0/app/${emulator.appId}/location`;
  const log = () => emulator.requests();

  it("shows a dropped request and a reset one with their outcome", async () => {
    emulator.clearRequests();
    const dropId = emulator.injectFault({ path: "app/*/location", action: { type: "drop" } });
    await assert.rejects(fetch(location()), TypeError);
    const resetId = emulator.injectFault({ path: "app/*/location", action: { type: "reset" } });
    await assert.rejects(fetch(location()), TypeError);
    const delayId = emulator.injectFault({ path: "app/*/location", delayMs: 50, action: { type: "passThrough" } });
    assert.equal((await fetch(location())).status, 200);
    assert.equal((await fetch(location())).status, 200);
    assert.deepEqual(
      log().map((r) => ({ fault: r.fault, status: r.status, outcome: r.outcome })),
      [
        { fault: dropId, status: 0, outcome: "dropped" },
        { fault: resetId, status: 0, outcome: "reset" },
        { fault: delayId, status: 200, outcome: "delayedThenServed" },
        { fault: null, status: 200, outcome: "served" },
      ],
    );
    // The fields that were there before are all still there.
    for (const entry of log()) {
      assert.equal(entry.method, "GET");
      assert.equal(entry.path, `/api/client/v2.0/app/${emulator.appId}/location`);
      assert.equal(entry.tokenType, "none");
      assert.equal(typeof entry.id, "string");
      assert.equal(typeof entry.timestampMs, "number");
    }
  });

  it("shows a request the client gave up on during a fault's delay", async () => {
    emulator.clearRequests();
    const id = emulator.injectFault({ path: "app/*/location", delayMs: 30_000, action: { type: "passThrough" } });
    await assert.rejects(fetch(location(), { signal: AbortSignal.timeout(100) }), { name: "TimeoutError" });
    const deadline = Date.now() + 10_000;
    while (log().length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(
      log().map((r) => ({ fault: r.fault, status: r.status, outcome: r.outcome })),
      [{ fault: id, status: 0, outcome: "abortedByClient" }],
    );
  });
});
