// The fault matrix: every failure the emulator can inject, what the SDK makes
// of it, and how many requests the server saw (retries included).
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { App, Credentials, ErrorCode, UserState, type User } from "realm-auth-native";
import { type FaultSpec } from "realm-auth-server";

import { rejection, useEmulator } from "./helpers";

const env = useEmulator();
const KEYS = "/api/client/v2.0/auth/api_keys";
const SESSION = "/api/client/v2.0/auth/session";
const JSON_TYPE = { "content-type": "application/json" };
const KEY_DOC = '{"_id":"deadbeefdeadbeefdeadbeef","name":"n","disabled":false}';

/** A logged-in user on a fresh App; no faults left, the request log cleared. */
async function setUp(options: { timeout?: number; retries?: number } = {}): Promise<{ app: App; user: User }> {
  const app = env.newApp(options);
  const { user } = await env.newUser(app);
  env.emulator.clearFaults();
  env.emulator.clearRequests();
  return { app, user };
}

/** `METHOD path status` of every request the emulator saw since the last clear. */
function seen(): string[] {
  return env.emulator.requests().map((r) => `${r.method} ${r.path} ${r.status}`);
}

function fault(spec: FaultSpec): void {
  env.emulator.injectFault(spec);
}

describe("fault matrix", () => {
  it("connection refused: retried, then NetworkError (nothing was sent)", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const app = new App({ id: "x", baseUrl: `http://127.0.0.1:${port}`, retries: 2 });
    const started = Date.now();
    const err = await rejection(app.logIn(Credentials.anonymous()));
    assert.equal(err.code, ErrorCode.NetworkError);
    assert.match(err.message, /Connection refused|connect/i);
    assert.ok(Date.now() - started < 2000);
  });

  it("connection dropped before any response on a GET: retried once, then success", async () => {
    const { user } = await setUp();
    fault({ method: "GET", path: KEYS, action: { type: "drop" } });
    assert.deepEqual(await user.apiKeys.fetchAll(), []);
    assert.deepEqual(seen(), [`GET ${KEYS} 0`, `GET ${KEYS} 200`]);
  });

  it("connection reset mid-body on every try: four GETs, then NetworkError", async () => {
    const { user } = await setUp();
    fault({ method: "GET", path: KEYS, times: 0, action: { type: "truncate", status: 200, headers: JSON_TYPE, body: `[${KEY_DOC}]`, bytes: 7 } });
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.code, ErrorCode.NetworkError);
    assert.equal(seen().length, 4);
    assert.equal(user.state, UserState.LoggedIn);
  });

  it("a create whose answer is cut off is not retried, and says the key may exist", async () => {
    const { user } = await setUp();
    fault({ method: "POST", path: KEYS, action: { type: "truncate", status: 201, headers: JSON_TYPE, body: KEY_DOC, bytes: 5 } });
    const err = await rejection(user.apiKeys.create("maybe"));
    assert.equal(err.code, ErrorCode.NetworkError);
    assert.match(err.message, /may have been created/);
    assert.deepEqual(seen(), [`POST ${KEYS} 201`]);
  });

  it("a create answered 503 is not retried (the server may have acted)", async () => {
    const { user } = await setUp();
    fault({ method: "POST", path: KEYS, action: { type: "respond", status: 503, body: "" } });
    const err = await rejection(user.apiKeys.create("once"));
    assert.equal(err.code, ErrorCode.HTTPError);
    assert.equal(err.statusCode, 503);
    assert.deepEqual(seen(), [`POST ${KEYS} 503`]);
  });

  it("a stalled response past the deadline: Timeout, one request", async () => {
    const { user } = await setUp({ timeout: 300 });
    fault({ path: KEYS, delayMs: 2000, action: { type: "passThrough" } });
    const started = Date.now();
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.code, ErrorCode.Timeout);
    assert.ok(Date.now() - started < 1000, `settled after ${Date.now() - started} ms`);
    assert.ok(seen().length <= 1);
  });

  it("a per-call timeout overrides the App's", async () => {
    const { user } = await setUp();
    fault({ path: KEYS, delayMs: 2000, action: { type: "passThrough" } });
    const started = Date.now();
    const err = await rejection(user.apiKeys.fetchAll({ timeout: 200 }));
    assert.equal(err.code, ErrorCode.Timeout);
    assert.ok(Date.now() - started < 900, `settled after ${Date.now() - started} ms`);
  });

  it("a slow body within the deadline is read whole", async () => {
    const { user } = await setUp();
    fault({ path: KEYS, action: { type: "slowBody", status: 200, headers: JSON_TYPE, body: `[${KEY_DOC}]`, chunkBytes: 16, chunkDelayMs: 20 } });
    assert.deepEqual(await user.apiKeys.fetchAll(), [{ _id: "deadbeefdeadbeefdeadbeef", name: "n", disabled: false }]);
    assert.equal(seen().length, 1);
  });

  it("a slow body past the deadline: Timeout", async () => {
    const { user } = await setUp({ timeout: 300 });
    fault({ path: KEYS, action: { type: "slowBody", status: 200, headers: JSON_TYPE, body: `[${KEY_DOC}]`, chunkBytes: 4, chunkDelayMs: 100 } });
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.code, ErrorCode.Timeout);
  });

  it("429 with Retry-After: waits that long, then succeeds", async () => {
    const { user } = await setUp();
    fault({ path: KEYS, action: { type: "respond", status: 429, headers: { "retry-after": "1" }, body: "" } });
    assert.deepEqual(await user.apiKeys.fetchAll(), []);
    const [first, second] = env.emulator.requests();
    assert.deepEqual(seen(), [`GET ${KEYS} 429`, `GET ${KEYS} 200`]);
    assert.ok(second.timestampMs - first.timestampMs >= 950, `${second.timestampMs - first.timestampMs} ms`);
  });

  it("a Retry-After longer than the deadline is not waited for", async () => {
    const { user } = await setUp({ timeout: 500 });
    fault({ path: KEYS, action: { type: "respond", status: 429, headers: { "retry-after": "30" }, body: "" } });
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.statusCode, 429);
    assert.equal(err.code, ErrorCode.HTTPError);
    assert.deepEqual(seen(), [`GET ${KEYS} 429`]);
  });

  for (const status of [502, 503, 504]) {
    it(`${status} once on a GET: retried, then success`, async () => {
      const { user } = await setUp();
      fault({ path: KEYS, action: { type: "respond", status, body: "" } });
      assert.deepEqual(await user.apiKeys.fetchAll(), []);
      assert.deepEqual(seen(), [`GET ${KEYS} ${status}`, `GET ${KEYS} 200`]);
    });
  }

  it("503 on every try: 1 + retries requests, then the error", async () => {
    const { user } = await setUp({ retries: 2 });
    fault({ method: "PUT", path: `${KEYS}/*/enable`, times: 0, action: { type: "respond", status: 503, body: "" } });
    const err = await rejection(user.apiKeys.enable("deadbeefdeadbeefdeadbeef"));
    assert.equal(err.statusCode, 503);
    assert.equal(seen().length, 3);
  });

  it("retries: 0 turns retrying off", async () => {
    const { user } = await setUp({ retries: 0 });
    fault({ path: KEYS, action: { type: "respond", status: 503, body: "" } });
    assert.equal((await rejection(user.apiKeys.fetchAll())).statusCode, 503);
    assert.equal(seen().length, 1);
  });

  it("500 is not retried", async () => {
    const { user } = await setUp();
    fault({ path: KEYS, action: { type: "respond", status: 500, headers: JSON_TYPE, body: '{"error":"boom","error_code":"InternalServerError"}' } });
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.code, ErrorCode.InternalServerError);
    assert.equal(err.message, "boom");
    assert.equal(seen().length, 1);
  });

  it("an HTML error page: HTTPError with the page's start, one request", async () => {
    const { user } = await setUp();
    fault({ path: KEYS, action: { type: "respond", status: 500, headers: { "content-type": "text/html" }, body: "<html><body>Internal Server Error</body></html>" } });
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.code, ErrorCode.HTTPError);
    assert.match(err.message, /^http error code considered fatal: <html>.*\. Server Error: 500$/);
    assert.equal(seen().length, 1);
  });

  it("malformed JSON on a 200: MalformedJson, not retried", async () => {
    const { user } = await setUp();
    fault({ path: KEYS, action: { type: "respond", status: 200, headers: JSON_TYPE, body: "[{" } });
    assert.equal((await rejection(user.apiKeys.fetchAll())).code, ErrorCode.MalformedJson);
    assert.equal(seen().length, 1);
  });

  it("an oversized body: ResponseTooLarge, not retried", async () => {
    const { user } = await setUp();
    fault({ path: KEYS, action: { type: "respond", status: 200, headers: JSON_TYPE, body: `[${" ".repeat(5 * 1024 * 1024)}]` } });
    assert.equal((await rejection(user.apiKeys.fetchAll())).code, ErrorCode.ResponseTooLarge);
    assert.equal(seen().length, 1);
  });

  it("401 on a refresh-token call: logged out, session deleted, no retry", async () => {
    const { app, user } = await setUp();
    fault({ path: KEYS, action: { type: "respond", status: 401, headers: JSON_TYPE, body: '{"error":"invalid session","error_code":"InvalidSession"}' } });
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.code, ErrorCode.InvalidSession);
    assert.equal(user.state, UserState.LoggedOut);
    assert.equal(app.currentUser, null);
    assert.deepEqual(seen(), [`GET ${KEYS} 401`, `DELETE ${SESSION} 204`]);
  });

  it("401 on an access-token call: one refresh, one retry", async () => {
    const { user } = await setUp();
    fault({ path: "/api/client/v2.0/auth/profile", action: { type: "respond", status: 401, body: "" } });
    await user.refreshProfile();
    assert.deepEqual(seen(), [
      "GET /api/client/v2.0/auth/profile 401",
      `POST ${SESSION} 201`,
      "GET /api/client/v2.0/auth/profile 200",
    ]);
  });

  it("a refresh refused with 401: the original error, logged out once", async () => {
    const { user } = await setUp();
    fault({ path: "/api/client/v2.0/auth/profile", action: { type: "respond", status: 401, body: "" } });
    fault({ method: "POST", path: SESSION, action: { type: "respond", status: 401, headers: JSON_TYPE, body: '{"error":"invalid session","error_code":"InvalidSession"}' } });
    const err = await rejection(user.refreshProfile());
    assert.equal(err.statusCode, 401);
    assert.equal(err.url, `${env.emulator.baseUrl}/api/client/v2.0/auth/profile`);
    assert.equal(user.state, UserState.LoggedOut);
    assert.deepEqual(seen(), [
      "GET /api/client/v2.0/auth/profile 401",
      `POST ${SESSION} 401`,
      `DELETE ${SESSION} 204`,
    ]);
  });
});

describe("cancellation", () => {
  it("an already aborted signal rejects with its reason, as fetch does, and sends nothing", async () => {
    const { user } = await setUp();
    const signal = AbortSignal.abort();
    const err = await rejection(user.apiKeys.fetchAll({ signal }));
    assert.equal(err, signal.reason);
    assert.equal(err.name, "AbortError");
    const why = new Error("shutting down");
    assert.equal(await rejection(user.apiKeys.fetchAll({ signal: AbortSignal.abort(why) })), why);
    assert.deepEqual(seen(), []);
  });

  it("rejects with the signal's reason mid-call: TimeoutError for AbortSignal.timeout, any value as is", async () => {
    const { user } = await setUp();
    fault({ path: KEYS, times: 0, delayMs: 3000, action: { type: "passThrough" } });
    const timedOut = await rejection(user.apiKeys.fetchAll({ signal: AbortSignal.timeout(50) }));
    assert.equal(timedOut.name, "TimeoutError");
    const controller = new AbortController();
    setTimeout(() => controller.abort("a string reason"), 50);
    assert.equal(await rejection(user.apiKeys.fetchAll({ signal: controller.signal })), "a string reason");
    // A signal-like object without a reason: this SDK's AbortError (code 4904).
    const bare = { aborted: false, addEventListener: (_: string, listener: () => void) => setTimeout(listener, 50), removeEventListener() {} };
    const err = await rejection(user.apiKeys.fetchAll({ signal: bare as never }));
    assert.equal(err.name, "AbortError");
    assert.equal(err.code, ErrorCode.Aborted);
  });

  it("aborting mid-call rejects at once and cancels the request", async () => {
    const { user } = await setUp();
    fault({ path: KEYS, delayMs: 3000, action: { type: "passThrough" } });
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 100);
    const err = await rejection(user.apiKeys.fetchAll({ signal: controller.signal }));
    assert.equal(err.name, "AbortError");
    assert.ok(Date.now() - started < 1000, `settled after ${Date.now() - started} ms`);
    assert.equal(user.state, UserState.LoggedIn);
  });

  it("a signal reused across calls works each time and never fires late", async () => {
    const { user } = await setUp();
    const controller = new AbortController();
    for (let i = 0; i < 20; i++) await user.apiKeys.fetchAll({ signal: controller.signal });
    controller.abort();
    assert.equal((await rejection(user.apiKeys.fetchAll({ signal: controller.signal }))).name, "AbortError");
  });

  it("refuses bad options with a TypeError", async () => {
    const { user } = await setUp();
    for (const options of [{ timeout: 0 }, { timeout: -1 }, { timeout: "5" }, { signal: {} }, { signal: 5 }, 7]) {
      const err = await rejection(user.apiKeys.fetchAll(options as never));
      assert.equal(err.code, ErrorCode.InvalidArgument, JSON.stringify(options));
      assert.ok(err instanceof TypeError);
    }
    assert.deepEqual(seen(), []);
  });
});
