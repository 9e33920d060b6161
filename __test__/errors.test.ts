// How failures reach JS: realm's codes, the server's fields, and our own codes
// for network failures, timeouts and malformed responses.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { App, Credentials, ErrorCode, MetadataMode, RealmAuthError, isRealmAuthError } from "realm-auth-native";

import { rejection, useEmulator } from "./helpers";

const env = useEmulator();
const KEYS = "/api/client/v2.0/auth/api_keys";
const JSON_HEADERS = { "content-type": "application/json" };

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("errors", () => {
  it("exports realm's numeric codes by name", () => {
    assert.equal(ErrorCode.APIKeyNotFound, 4334);
    assert.equal(ErrorCode.InvalidSession, 4301);
    assert.equal(ErrorCode.InvalidPassword, 4349);
    assert.equal(ErrorCode.HTTPError, 4309);
  });

  it("reports a wrong password as realm v12 does", async () => {
    const app = env.newApp();
    const { email } = await env.newUser(app);
    const err = await rejection(app.logIn(Credentials.emailPassword(email, "wrong-password")));
    assert.ok(err instanceof Error);
    assert.equal(err.message, "unauthorized");
    assert.equal(err.code, 4349);
    assert.equal(err.statusCode, 401);
    assert.equal(err.errorCode, "InvalidPassword");
    assert.equal(err.method, "POST");
    assert.ok(!String(err.stack).includes("wrong-password"));
  });

  it("a rejection's stack names the file and line that made the call", async () => {
    const here = /errors\.test\.ts:\d+:\d+/;
    const app = env.newApp({ timeout: 300 });
    const wrong = await rejection(app.logIn(Credentials.emailPassword("nobody@example.com", "wrong-password")));
    assert.match(String(wrong.stack), here);
    assert.match(String(wrong.stack), /^Error: unauthorized\n/);
    const typeError = await rejection(app.logIn(42 as never));
    assert.match(String(typeError.stack), /^TypeError: Expected 'credentials'/);
    assert.match(String(typeError.stack), here);
    const offline = new App({ id: "x", baseUrl: `http://127.0.0.1:${await closedPort()}`, metadata: { mode: MetadataMode.InMemory } });
    assert.match(String((await rejection(offline.logIn(Credentials.anonymous()))).stack), here);
    const { user } = await env.newUser(app);
    env.emulator.injectFault({ path: KEYS, delayMs: 3000, action: { type: "passThrough" } });
    const timeout = await rejection(user.apiKeys.fetchAll());
    assert.equal(timeout.code, ErrorCode.Timeout);
    assert.match(String(timeout.stack), here);
    assert.ok(!String(wrong.stack).includes("wrong-password"));
  });

  it("reports a refused connection as realm v12 does: code 4000, a reason in plain words", async () => {
    const app = new App({ id: "x", baseUrl: `http://127.0.0.1:${await closedPort()}`, metadata: { mode: MetadataMode.InMemory } });
    const err = await rejection(app.logIn(Credentials.anonymous()));
    assert.equal(err.code, ErrorCode.NetworkError);
    assert.equal(err.code, 4000);
    assert.match(err.message, /^request to http:\/\/127\.0\.0\.1:\d+\/api\/client\/v2\.0\/app\/x\/location failed, reason: connection refused$/);
    assert.equal(err.statusCode, undefined);
  });

  it("reports a stalled server as a Timeout within the App's deadline", async () => {
    const app = env.newApp({ timeout: 300 });
    const { user } = await env.newUser(app);
    env.emulator.injectFault({ path: KEYS, delayMs: 3000, action: { type: "passThrough" } });
    const started = Date.now();
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.code, ErrorCode.Timeout);
    // The attempt's timeout or the call's deadline, whichever timer fires first.
    assert.match(err.message, /(timed out after|did not complete within) 300 ms/);
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.ok(user.isLoggedIn);
  });

  it("turns an HTML error page into an HTTPError with the status", async () => {
    const app = env.newApp({ retries: 0 });
    const { user } = await env.newUser(app);
    env.emulator.injectFault({ path: KEYS, action: { type: "respond", status: 502, headers: { "content-type": "text/html" }, body: "<html><h1>502 Bad Gateway</h1></html>" } });
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.code, ErrorCode.HTTPError);
    assert.equal(err.statusCode, 502);
    assert.equal(err.message, "http error code considered fatal: <html><h1>502 Bad Gateway</h1></html>. Server Error: 502");
  });

  it("every error is a RealmAuthError: instanceof, the type guard, and codes for the server's own names", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    for (let i = 0; i < 20; i++) await user.apiKeys.create(`limit-${i}`);
    const limit: unknown = await rejection(user.apiKeys.create("one-too-many"));
    assert.ok(limit instanceof RealmAuthError);
    assert.ok(limit instanceof Error);
    assert.ok(isRealmAuthError(limit));
    // The guard narrows: the typed fields are there without a cast.
    const code: number = limit.code;
    const errorCode: string | undefined = limit.errorCode;
    assert.equal(code, ErrorCode.LimitExceeded);
    assert.equal(errorCode, "LimitExceeded");
    const elsewhere = new App({ id: "no-such-app", baseUrl: env.emulator.baseUrl, metadata: { mode: MetadataMode.InMemory } });
    const missing = await rejection(elsewhere.logIn(Credentials.anonymous()));
    assert.equal(missing.code, ErrorCode.AppNotFound);
    const refused = await rejection(user.apiKeys.fetch("not an id"));
    assert.ok(refused instanceof TypeError && refused instanceof RealmAuthError && isRealmAuthError(refused));
    // Not ours: other errors, a signal's reason, and the class cannot be made by hand.
    assert.equal(isRealmAuthError(new Error("x")), false);
    assert.equal(new Error("x") instanceof RealmAuthError, false);
    assert.equal(isRealmAuthError(await rejection(user.apiKeys.fetchAll({ signal: AbortSignal.abort() }))), false);
    assert.throws(() => new (RealmAuthError as any)(), TypeError);
  });

  it("treats an error body as an error even with a 2xx status", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    env.emulator.injectFault({ path: KEYS, action: { type: "respond", status: 200, headers: JSON_HEADERS, body: '{"error":"nope","error_code":"SomethingNew"}' } });
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.code, ErrorCode.AppServerError);
    assert.equal(err.errorCode, "SomethingNew");
    assert.equal(err.message, "nope");
  });

  it("reports malformed, truncated and incomplete responses", async () => {
    const app = env.newApp({ retries: 0 });
    const { user } = await env.newUser(app);
    env.emulator.injectFault({ path: KEYS, action: { type: "respond", status: 200, headers: JSON_HEADERS, body: "{not json" } });
    assert.equal((await rejection(user.apiKeys.fetchAll())).code, ErrorCode.MalformedJson);
    env.emulator.injectFault({ path: KEYS, action: { type: "respond", status: 200, headers: JSON_HEADERS, body: '{"_id":"x"}' } });
    assert.equal((await rejection(user.apiKeys.fetchAll())).code, ErrorCode.MalformedJson);
    env.emulator.injectFault({ method: "POST", path: KEYS, action: { type: "respond", status: 201, headers: JSON_HEADERS, body: '{"_id":"deadbeefdeadbeefdeadbeef","name":"n","disabled":false}' } });
    const missing = await rejection(user.apiKeys.create("n"));
    assert.equal(missing.code, ErrorCode.MissingJsonKey);
    assert.equal(missing.message, "key");
    env.emulator.injectFault({ path: KEYS, action: { type: "truncate", status: 200, headers: JSON_HEADERS, body: '[{"_id":"deadbeefdeadbeefdeadbeef","name":"n","disabled":false}]', bytes: 10 } });
    assert.equal((await rejection(user.apiKeys.fetchAll())).code, ErrorCode.NetworkError);
    env.emulator.injectFault({ path: KEYS, action: { type: "drop" } });
    assert.equal((await rejection(user.apiKeys.fetchAll())).code, ErrorCode.NetworkError);
    assert.ok(user.isLoggedIn);
    assert.deepEqual(await user.apiKeys.fetchAll(), []);
  });
});
