// The emulator as a tool you can discover: `GET /_emulator/` lists its control
// routes, every control method fails with a documented numeric code (also
// once stopped), and the request log shows what faults did to each request.
// Its HTTP control API takes only requests with its control token, from no
// web page.
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { isRealmAuthError } from "realm-auth-native";
import { Emulator, EmulatorErrorCode } from "realm-auth-server";

/** What a sync call throws (fails the test if it returns). */
function thrown(call: () => unknown): Error & Record<string, any> {
  try {
    call();
  } catch (err) {
    return err as Error & Record<string, any>;
  }
  throw new Error("expected the call to throw");
}

/** What a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, any>> {
  try {
    await promise;
  } catch (err) {
    return err as Error & Record<string, any>;
  }
  throw new Error("expected the promise to reject");
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

/** A control request over HTTP, with the control token and a JSON body. */
function control(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${emulator.baseUrl}/_emulator${path}`, {
    method,
    headers: { authorization: `Bearer ${emulator.controlToken}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe("GET /_emulator/", () => {
  it("lists the control routes with one-line descriptions, the error codes and the guide", async () => {
    const response = await fetch(`${emulator.baseUrl}/_emulator/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    const index = (await response.json()) as {
      routes: { method: string; path: string; description: string }[];
      errorCodes: { code: number; name: string; description: string }[];
      guide: string;
      authentication: string;
    };
    assert.equal(index.guide, "docs/EMULATOR.md");
    assert.match(index.authentication, /Authorization: Bearer <token>/);
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
    const post = (path: string, body?: unknown) => control("POST", path, body);
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
    response = await control("GET", "/nope");
    assert.equal(response.status, 404);
    const body = (await response.json()) as { error: string; code: number };
    assert.equal(body.code, EmulatorErrorCode.EmulatorNotFound);
    assert.match(body.error, /GET \/_emulator\/ lists them/);
  });
});

describe("control method errors", () => {
  it("createUser: rejects, a taken email with EmulatorUserExists, bad input with a TypeError", async () => {
    const email = newEmail();
    const user = await emulator.createUser(email, "pw-123456");
    assert.equal(user.email, email);
    assert.match(user.id, /^[0-9a-f]{24}$/);
    assertEmulatorError(await rejection(emulator.createUser(email, "pw-123456")), EmulatorErrorCode.EmulatorUserExists, `a user with email '${email}' already exists`);
    assertEmulatorError(await rejection(emulator.createUser(newEmail(), "short")), EmulatorErrorCode.EmulatorBadRequest, "password must be between 6 and 128 characters", true);
    assertEmulatorError(await rejection(emulator.createUser(" ", "pw-123456")), EmulatorErrorCode.EmulatorBadRequest, "email must not be empty", true);
  });

  it("createUser hashes the password off the JS thread", async () => {
    // Enough iterations for the hash to take a while in any build; timers must keep firing.
    const slow = await Emulator.start({ passwordIterations: 100_000 });
    try {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const started = performance.now();
      const created = slow.createUser(newEmail(), "pw-123456");
      assert.ok(created instanceof Promise);
      await created;
      const elapsed = performance.now() - started;
      clearInterval(timer);
      assert.ok(ticks >= 5, `${ticks} timer ticks in ${elapsed.toFixed(0)} ms of hashing`);
    } finally {
      await slow.stop();
    }
  });

  it("revokeSessions and setCustomData: an unknown user is EmulatorUserNotFound", async () => {
    const message = `no user with id '${UNKNOWN_ID}'`;
    assertEmulatorError(thrown(() => emulator.revokeSessions(UNKNOWN_ID)), EmulatorErrorCode.EmulatorUserNotFound, message);
    assertEmulatorError(thrown(() => emulator.setCustomData(UNKNOWN_ID, { a: 1 })), EmulatorErrorCode.EmulatorUserNotFound, message);
    const user = await emulator.createUser(newEmail(), "pw-123456");
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
    const dir = mkdtempSync(join(tmpdir(), "realm-auth-server-"));
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
    const user = await stopped.createUser(newEmail(), "pw-123456");
    const { baseUrl, appId, port } = stopped;
    await stopped.stop();
    await stopped.stop();
    const message = `the emulator at ${baseUrl} is stopped: start a new one with Emulator.start()`;
    // The one async control method rejects rather than throws.
    assertEmulatorError(await rejection(stopped.createUser(newEmail(), "pw-123456")), EmulatorErrorCode.EmulatorStopped, message);
    const calls: Record<string, () => unknown> = {
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
      controlTokenLine: () => stopped.controlTokenLine(),
      servingLine: () => stopped.servingLine(false),
      reloadTls: () => stopped.reloadTls(),
    };
    // Every method of the class is covered.
    const methods = Object.getOwnPropertyNames(Emulator.prototype).filter((name) => {
      const descriptor = Object.getOwnPropertyDescriptor(Emulator.prototype, name)!;
      return typeof descriptor.value === "function" && !["constructor", "stop", "inspectFields"].includes(name) && !name.startsWith("_");
    });
    assert.deepEqual(methods.filter((m) => !(m in calls) && m !== "createUser"), []);
    for (const [name, call] of Object.entries(calls)) {
      const err = thrown(call);
      assertEmulatorError(err, EmulatorErrorCode.EmulatorStopped, message);
      assert.ok(err.stack, name);
    }
    // The getters still say where it was.
    assert.deepEqual({ baseUrl: stopped.baseUrl, appId: stopped.appId, port: stopped.port }, { baseUrl, appId, port });
    assert.match(stopped.controlToken, /^[0-9a-f]{48}$/);
  });

  it("fails right after an un-awaited stop()", async () => {
    const stopped = await Emulator.start();
    const stopping = stopped.stop();
    assertEmulatorError(thrown(() => stopped.requests()), EmulatorErrorCode.EmulatorStopped, /is stopped/);
    await stopping;
  });
});

describe("the HTTP control API's gate", () => {
  it("needs emulator.controlToken on every route but the index", async () => {
    assert.match(emulator.controlToken, /^[0-9a-f]{48}$/);
    const users = `${emulator.baseUrl}/_emulator/users`;
    let response = await fetch(users);
    assert.equal(response.status, 401);
    const body = (await response.json()) as { error: string; error_code: string; code: number };
    assert.equal(body.code, EmulatorErrorCode.EmulatorUnauthorized);
    assert.equal(body.error_code, "Unauthorized");
    assert.match(body.error, /Authorization: Bearer <token>/);
    response = await fetch(users, { headers: { authorization: "Bearer not-the-token-0123456789" } });
    assert.equal(response.status, 401);
    assert.equal((await control("GET", "/users")).status, 200);
    assert.equal((await fetch(`${emulator.baseUrl}/_emulator/`)).status, 200);
    // Each emulator has its own.
    const other = await Emulator.start();
    try {
      assert.notEqual(other.controlToken, emulator.controlToken);
    } finally {
      await other.stop();
    }
  });

  it("takes a chosen token (from the command line's options)", async () => {
    const options = Emulator.parseArgs(["--control-token", "a-chosen-control-token"]);
    const chosen = await Emulator.start(options!);
    try {
      assert.equal(chosen.controlToken, "a-chosen-control-token");
      assert.equal(chosen.controlTokenLine(), "Control token: a-chosen-control-token (send it to /_emulator/ as Authorization: Bearer <token>)");
    } finally {
      await chosen.stop();
    }
    const short = Emulator.parseArgs(["--control-token", "short"]);
    assertEmulatorError(await rejection(Emulator.start(short!)), EmulatorErrorCode.EmulatorBadRequest, /control token must be 16 to 256 characters/, true);
  });

  it("refuses what a web page can send: a text/plain body, a cross-origin request", async () => {
    const email = newEmail();
    const auth = { authorization: `Bearer ${emulator.controlToken}` };
    let response = await fetch(`${emulator.baseUrl}/_emulator/users`, { method: "POST", headers: auth, body: JSON.stringify({ email, password: "pw-123456" }) });
    assert.equal(response.status, 415);
    assert.equal(((await response.json()) as { code: number }).code, EmulatorErrorCode.EmulatorBadRequest);
    response = await fetch(`${emulator.baseUrl}/_emulator/reset`, { method: "POST", headers: { ...auth, origin: "http://attacker.example" } });
    assert.equal(response.status, 403);
    const body = (await response.json()) as { error: string; code: number };
    assert.equal(body.code, EmulatorErrorCode.EmulatorForbidden);
    assert.match(body.error, /cross-origin request from 'http:\/\/attacker\.example' refused/);
    assert.equal((await control("GET", "/users")).status, 200);
    assert.ok(!((await (await control("GET", "/users")).json()) as { email: string }[]).some((u) => u.email === email));
  });

  it("warns when other machines can reach the emulator", async () => {
    const warned = once(process, "warning");
    const exposed = await Emulator.start({ host: "0.0.0.0" });
    try {
      const [warning] = (await warned) as [Error & { code: string }];
      assert.equal(warning.name, "SecurityWarning");
      assert.equal(warning.code, "REALM_AUTH_EMULATOR_EXPOSED");
      assert.match(warning.message, new RegExp(`listens on 0\\.0\\.0\\.0:${exposed.port}, which other machines may reach`));
    } finally {
      await exposed.stop();
    }
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
