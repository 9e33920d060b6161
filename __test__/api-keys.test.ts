// user.apiKeys: every method, its request on the wire, and every server rule
// surfacing as the right error.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import Realm, { Credentials, ErrorCode, UserState } from "realm-auth-native";

import { rejection, useEmulator } from "./helpers";

const env = useEmulator();
const KEYS = "/api/client/v2.0/auth/api_keys";

describe("ApiKeyAuth", () => {
  it("runs the whole lifecycle: create, fetch, fetchAll, disable, enable, key login, delete", async () => {
    const app = env.newApp();
    const { user, email, password } = await env.newUser(app);
    assert.ok(user.apiKeys instanceof Realm.Auth.ApiKeyAuth);

    const created = await user.apiKeys.create("my-key_1");
    assert.deepEqual(Object.keys(created).sort(), ["_id", "disabled", "key", "name"]);
    assert.match(created._id, /^[0-9a-f]{24}$/);
    assert.equal(created.name, "my-key_1");
    assert.equal(created.disabled, false);
    assert.equal(typeof created.key, "string");
    assert.ok(created.key.length >= 43);

    const listed = await user.apiKeys.fetchAll();
    assert.deepEqual(listed, [{ _id: created._id, name: "my-key_1", disabled: false }]);

    await user.apiKeys.disable(created._id);
    assert.deepEqual(await user.apiKeys.fetch(created._id), { _id: created._id, name: "my-key_1", disabled: true });
    const refused = await rejection(app.logIn(Credentials.apiKey(created.key)));
    assert.equal(refused.code, ErrorCode.AuthError);
    assert.equal(refused.message, "invalid API key");
    assert.equal(refused.statusCode, 401);

    await user.apiKeys.enable(created._id);
    assert.equal((await user.apiKeys.fetch(created._id)).disabled, false);
    const keyUser = await app.logIn(Credentials.apiKey(created.key));
    assert.equal(keyUser.id, user.id);
    assert.ok(keyUser.identities.some((i) => i.providerType === "api-key"));

    // The session now comes from the key: the server refuses to delete it.
    const own = await rejection(keyUser.apiKeys.delete(created._id));
    assert.equal(own.statusCode, 403);
    assert.equal(own.code, ErrorCode.HTTPError);

    await app.logIn(Credentials.emailPassword(email, password));
    await user.apiKeys.delete(created._id);
    assert.deepEqual(await user.apiKeys.fetchAll(), []);
    const gone = await rejection(user.apiKeys.fetch(created._id));
    assert.equal(gone.code, ErrorCode.APIKeyNotFound);
    assert.equal(gone.code, 4334);
    assert.equal(gone.statusCode, 404);
    assert.equal(gone.errorCode, "APIKeyNotFound");
    assert.equal(gone.message, "API key not found");
    assert.equal(gone.method, "GET");
    assert.equal(gone.url, `${env.emulator.baseUrl}${KEYS}/${created._id}`);
    assert.match(String(gone.link), /^http/);
    assert.equal(user.state, UserState.LoggedIn);
  });

  it("sends each call with the refresh token, the right method, path and body", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    env.emulator.clearRequests();
    const key = await user.apiKeys.create("shape");
    await user.apiKeys.fetch(key._id);
    await user.apiKeys.fetchAll();
    await user.apiKeys.disable(key._id);
    await user.apiKeys.enable(key._id);
    await user.apiKeys.delete(key._id);
    const seen = env.emulator.requests().map((r) => ({
      method: r.method,
      path: r.path,
      tokenType: r.tokenType,
      userId: r.userId,
      body: r.body,
      contentType: r.contentType,
      accept: r.accept,
    }));
    const common = { tokenType: "refresh", userId: user.id, accept: "application/json" };
    // A Content-Type only with a body: realm-core sends it on every request, and
    // servers that check it refuse an empty body labelled JSON (see MIGRATING).
    const json = { contentType: "application/json;charset=utf-8" };
    const bare = { contentType: null };
    assert.deepEqual(seen, [
      { method: "POST", path: KEYS, body: { name: "shape" }, ...common, ...json },
      { method: "GET", path: `${KEYS}/${key._id}`, body: null, ...common, ...bare },
      { method: "GET", path: KEYS, body: null, ...common, ...bare },
      { method: "PUT", path: `${KEYS}/${key._id}/disable`, body: null, ...common, ...bare },
      { method: "PUT", path: `${KEYS}/${key._id}/enable`, body: null, ...common, ...bare },
      { method: "DELETE", path: `${KEYS}/${key._id}`, body: null, ...common, ...bare },
    ]);
    // The key value never reaches the request log.
    assert.ok(!JSON.stringify(env.emulator.requests()).includes(key.key));
  });

  it("takes realm v12's BSON.ObjectId as a key id, and its _id makes one", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const key = await user.apiKeys.create("bson");
    const id = new Realm.BSON.ObjectId(key._id);
    assert.equal((await user.apiKeys.fetch(id))._id, key._id);
    await user.apiKeys.disable(id);
    assert.equal((await user.apiKeys.fetch(key._id)).disabled, true);
  });

  it("accepts upper-case ids and ObjectId-like objects, and sends lower-case hex", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const key = await user.apiKeys.create("ids");
    env.emulator.clearRequests();
    await user.apiKeys.fetch(key._id.toUpperCase());
    await user.apiKeys.disable({ toHexString: () => key._id.toUpperCase() });
    assert.deepEqual(
      env.emulator.requests().map((r) => r.path),
      [`${KEYS}/${key._id}`, `${KEYS}/${key._id}/disable`],
    );
  });

  it("refuses invalid ids with a TypeError before any request", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    env.emulator.clearRequests();
    const bad: unknown[] = ["", "deadbeef", "zzzzzzzzzzzzzzzzzzzzzzzz", "deadbeefdeadbeefdeadbeef/", 42, null, undefined, {}, { toHexString: () => 5 }, { toHexString: "x" }];
    for (const id of bad) {
      for (const call of [
        () => user.apiKeys.fetch(id as string),
        () => user.apiKeys.enable(id as string),
        () => user.apiKeys.disable(id as string),
        () => user.apiKeys.delete(id as string),
      ]) {
        const err = await rejection(call());
        assert.equal(err.code, ErrorCode.InvalidArgument);
        assert.ok(err instanceof TypeError, `${String(id)}: ${err}`);
      }
    }
    assert.deepEqual(env.emulator.requests(), []);
  });

  it("never returns a key value from fetch or fetchAll, even if the server sends one", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const id = "deadbeefdeadbeefdeadbeef";
    const doc = { _id: id, name: "n", key: "leaked-secret", disabled: false };
    env.emulator.injectFault({ method: "GET", path: `${KEYS}/*`, action: { type: "respond", status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(doc) } });
    assert.deepEqual(await user.apiKeys.fetch(id), { _id: id, name: "n", disabled: false });
    env.emulator.injectFault({ method: "GET", path: KEYS, action: { type: "respond", status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify([doc]) } });
    assert.deepEqual(await user.apiKeys.fetchAll(), [{ _id: id, name: "n", disabled: false }]);
  });

  it("surfaces the server's rules with realm's codes", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);

    const badName = await rejection(user.apiKeys.create("has spaces"));
    assert.equal(badName.code, ErrorCode.InvalidParameter);
    assert.equal(badName.errorCode, "InvalidParameter");
    assert.match(badName.message, /can only contain ASCII letters, numbers, underscores, and hyphens/);

    const empty = await rejection(user.apiKeys.create(""));
    assert.equal(empty.code, ErrorCode.InvalidParameter);

    await user.apiKeys.create("dup");
    const dup = await rejection(user.apiKeys.create("dup"));
    assert.equal(dup.code, ErrorCode.APIKeyAlreadyExists);
    assert.equal(dup.errorCode, "APIKeyAlreadyExists");

    for (let i = 1; i < 20; i++) await user.apiKeys.create(`k${i}`);
    assert.equal((await user.apiKeys.fetchAll()).length, 20);
    const full = await rejection(user.apiKeys.create("k20"));
    assert.ok(full.statusCode && full.statusCode >= 400, String(full));
    assert.equal((await user.apiKeys.fetchAll()).length, 20);
  });

  it("hides other users' keys (404) and lists none of them", async () => {
    const app = env.newApp();
    const { user: alice } = await env.newUser(app);
    const { user: bob } = await env.newUser(app);
    const key = await alice.apiKeys.create("alices");
    for (const call of [
      () => bob.apiKeys.fetch(key._id),
      () => bob.apiKeys.enable(key._id),
      () => bob.apiKeys.disable(key._id),
      () => bob.apiKeys.delete(key._id),
    ]) {
      const err = await rejection(call());
      assert.equal(err.code, ErrorCode.APIKeyNotFound);
      assert.equal(err.statusCode, 404);
    }
    assert.deepEqual(await bob.apiKeys.fetchAll(), []);
    assert.equal((await alice.apiKeys.fetch(key._id)).disabled, false);
  });

  it("refuses key management to anonymous and server-key users (403)", async () => {
    const app = env.newApp();
    const anon = await app.logIn(Credentials.anonymous());
    const anonErr = await rejection(anon.apiKeys.create("nope"));
    assert.equal(anonErr.statusCode, 403);
    assert.equal(anonErr.code, ErrorCode.HTTPError);
    assert.equal(anonErr.message, "http error code considered fatal. Client Error: 403");
    assert.equal((await rejection(anon.apiKeys.fetchAll())).statusCode, 403);

    const serverKey = env.emulator.createServerApiKey("backend");
    const server = await app.logIn(Credentials.apiKey(serverKey.key));
    assert.equal((await rejection(server.apiKeys.create("nope"))).statusCode, 403);
    assert.equal((await rejection(server.apiKeys.fetchAll())).statusCode, 403);
  });

  it("logs the user out on a 401, attempts DELETE /auth/session, and does not retry", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    env.emulator.revokeSessions(user.id);
    env.emulator.clearRequests();
    const err = await rejection(user.apiKeys.fetchAll());
    assert.equal(err.statusCode, 401);
    assert.equal(err.code, ErrorCode.InvalidSession);
    assert.equal(user.state, UserState.LoggedOut);
    assert.equal(user.refreshToken, null);
    assert.equal(user.accessToken, null);
    assert.equal(app.currentUser, null);
    assert.deepEqual(
      env.emulator.requests().map((r) => `${r.method} ${r.path}`),
      [`GET ${KEYS}`, "DELETE /api/client/v2.0/auth/session"],
    );
    // A logged-out user's calls are refused without a request.
    env.emulator.clearRequests();
    const after = await rejection(user.apiKeys.fetchAll());
    assert.equal(after.code, ErrorCode.ClientUserNotLoggedIn);
    assert.deepEqual(env.emulator.requests(), []);
  });

  it("keeps the user logged in when only the access token expired (key calls use the refresh token)", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    env.emulator.expireAccessTokens();
    env.emulator.clearRequests();
    await user.apiKeys.fetchAll();
    assert.deepEqual(env.emulator.requests().map((r) => r.tokenType), ["refresh"]);
    assert.equal(user.state, UserState.LoggedIn);
  });
});
