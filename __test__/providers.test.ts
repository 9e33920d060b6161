// The email/password account routes with confirmation required, and the
// custom JWT and function providers.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { App, Credentials, ErrorCode, MetadataMode } from "realm-auth-native";
import { Emulator } from "realm-auth-server";

import { rejection, testStore } from "./helpers";

const SECRET = "test-signing-secret";
let emulator: Emulator;
let app: App;

const [store, removeStore] = testStore();

before(async () => {
  emulator = await Emulator.start({ ...store, requireEmailConfirmation: true, customTokenSecret: SECRET });
  app = new App({ id: emulator.appId, baseUrl: emulator.baseUrl, metadata: { mode: MetadataMode.InMemory } });
});
after(async () => {
  await emulator.stop();
  removeStore();
});

/** An HS256 JWT, as a custom JWT provider would receive it. */
function jwt(claims: Record<string, unknown>, secret = SECRET): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

describe("email/password with confirmation", () => {
  it("registers, refuses login until confirmed, resends, confirms", async () => {
    const email = "confirm-me@example.com";
    await app.emailPasswordAuth.registerUser({ email, password: "password-123" });
    const early = await rejection(app.logIn(Credentials.emailPassword(email, "password-123")));
    assert.equal(early.code, ErrorCode.AuthError);
    assert.equal(early.message, "confirmation required");

    const first = emulator.pendingConfirmation(email);
    assert.ok(first);
    await app.emailPasswordAuth.resendConfirmationEmail({ email });
    await app.emailPasswordAuth.retryCustomConfirmation({ email });
    const pair = emulator.pendingConfirmation(email);
    assert.ok(pair);

    const bad = await rejection(app.emailPasswordAuth.confirmUser({ token: "nope", tokenId: pair.tokenId }));
    assert.equal(bad.code, ErrorCode.UserpassTokenInvalid);
    await app.emailPasswordAuth.confirmUser({ token: pair.token, tokenId: pair.tokenId });
    const user = await app.logIn(Credentials.emailPassword(email, "password-123"));
    assert.equal(user.isLoggedIn, true);
    const again = await rejection(app.emailPasswordAuth.resendConfirmationEmail({ email }));
    assert.equal(again.code, ErrorCode.UserAlreadyConfirmed);
  });

  it("resets a password through the reset function, with extra arguments", async () => {
    const email = "reset-fn@example.com";
    await emulator.createUser(email, "password-123");
    // Every argument reaches the server, however many (a null and a trailing one included).
    const extra = ["extra", { n: 1 }, 2, 3, 4, 5, 6, 7, 8, null, "tenth"];
    await app.emailPasswordAuth.callResetPasswordFunction({ email, password: "password-456" }, ...extra);
    const sent = emulator.requests().reverse().find((r) => r.path.endsWith("/reset/call"));
    assert.deepEqual(sent?.body, { email, password: "<redacted>", arguments: extra });
    const user = await app.logIn(Credentials.emailPassword(email, "password-456"));
    assert.equal(user.isLoggedIn, true);
  });

  it("reports unknown users on the account routes", async () => {
    const err = await rejection(app.emailPasswordAuth.sendResetPasswordEmail({ email: "nobody@example.com" }));
    assert.equal(err.code, ErrorCode.UserNotFound);
    assert.equal(err.statusCode, 404);
  });
});

describe("custom providers", () => {
  it("logs in with a custom JWT and reads its identity", async () => {
    const now = Math.floor(Date.now() / 1000);
    const user = await app.logIn(Credentials.jwt(jwt({ sub: "jwt-user-1", iat: now, exp: now + 600 })));
    assert.deepEqual(user.identities, [{ id: "jwt-user-1", providerType: "custom-token" }]);
    assert.equal(user.providerType, "custom-token");
    const forged = await rejection(app.logIn(Credentials.jwt(jwt({ sub: "x", iat: now, exp: now + 600 }, "wrong-secret"))));
    assert.equal(forged.code, ErrorCode.AuthError);
    const expired = await rejection(app.logIn(Credentials.jwt(jwt({ sub: "x", iat: now - 20, exp: now - 10 }))));
    assert.equal(expired.statusCode, 401);
  });

  it("logs in with a function payload, sent as given", async () => {
    const user = await app.logIn(Credentials.function({ id: "fn-7", extra: [1, 2] }));
    assert.deepEqual(user.identities, [{ id: "fn-7", providerType: "custom-function" }]);
    const sent = emulator.requests().reverse().find((r) => r.path.endsWith("/custom-function/login"));
    const body = sent?.body as Record<string, unknown>;
    assert.equal(body.id, "fn-7");
    assert.deepEqual(body.extra, [1, 2]);
    assert.equal(body.provider, undefined, "function credentials carry no provider field");
  });
});
