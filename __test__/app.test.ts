// App, Credentials and User: realm v12's behaviour around the key calls.
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { describe, it } from "node:test";
import Realm, { App, Credentials, ErrorCode, UserState } from "realm-auth-native";

import { rejection, useEmulator } from "./helpers";

const env = useEmulator();

describe("App", () => {
  it("takes an id or a configuration, trims the base URL and has realm's default", () => {
    assert.equal(new App("some-app").id, "some-app");
    assert.equal(new App("some-app").baseUrl, "https://services.cloud.mongodb.com");
    const app = new App({ id: "x", baseUrl: "http://127.0.0.1:1/", timeout: 1000 });
    assert.equal(app.baseUrl, "http://127.0.0.1:1");
    assert.equal(new Realm.App("y").id, "y");
    // realm v12 takes a timeout of 0 for its default.
    assert.equal(new App({ id: "z", timeout: 0, metadata: { mode: Realm.MetadataMode.InMemory } }).id, "z");
  });

  it("has realm v12's enums at run time, with v12's values", () => {
    assert.deepEqual({ ...Realm.ProviderType }, {
      AnonUser: "anon-user",
      ApiKey: "api-key",
      LocalUserPass: "local-userpass",
      CustomFunction: "custom-function",
      CustomToken: "custom-token",
      OAuth2Google: "oauth2-google",
      OAuth2Facebook: "oauth2-facebook",
      OAuth2Apple: "oauth2-apple",
    });
    assert.deepEqual({ ...Realm.MetadataMode }, {
      NoEncryption: "noEncryption",
      Encryption: "encryption",
      NoMetadata: "noMetadata",
      InMemory: "inMemory",
    });
    assert.deepEqual({ ...UserState }, { Active: "active", LoggedIn: "LoggedIn", LoggedOut: "LoggedOut", Removed: "Removed" });
    assert.equal(Credentials.apiKey("k").providerType, Realm.ProviderType.ApiKey);
  });

  it("refuses bad configuration with a TypeError", () => {
    for (const bad of [
      () => new App(""),
      () => new App({ id: "x", baseUrl: "ftp://example.com" }),
      () => new App({ id: "x", baseUrl: "not a url" }),
      () => new App({ id: "x", timeout: -1 }),
      () => new App({ id: "x", timeout: Number.NaN }),
      () => new App({ id: "x", multiplexSessions: "yes" as never }),
    ]) {
      assert.throws(bad, (err: any) => err.code === ErrorCode.InvalidArgument && err instanceof TypeError);
    }
  });

  it("requests the location once, then sends everything to its hostname", async () => {
    const app = env.newApp();
    env.emulator.clearRequests();
    await env.newUser(app);
    await app.logIn(Credentials.anonymous(false));
    const locations = env.emulator.requests().filter((r) => r.path.endsWith("/location"));
    assert.equal(locations.length, 1);
    assert.equal(locations[0].path, `/api/client/v2.0/app/${env.emulator.appId}/location`);
    assert.equal(locations[0].hasAuthorization, false);
  });

  it("logs in with every provider and fetches the profile", async () => {
    const app = env.newApp();
    const { user, email } = await env.newUser(app);
    assert.equal(user.state, UserState.LoggedIn);
    assert.equal(user.isLoggedIn, true);
    assert.equal(user.profile.email, email);
    assert.deepEqual(user.identities.map((i) => i.providerType), ["local-userpass"]);
    assert.equal(user.providerType, "local-userpass");
    assert.match(String(user.deviceId), /^[0-9a-f]{24}$/);
    assert.equal(app.currentUser?.id, user.id);

    // realm-web's `logIn(credentials, fetchProfile)` is accepted (the profile is always read).
    const webStyle = await app.logIn(Credentials.anonymous(false), false);
    assert.deepEqual(webStyle.identities.map((i) => i.providerType), ["anon-user"]);

    const fn = await app.logIn(Credentials.function({ id: "fn-user-1" }));
    assert.deepEqual(fn.identities.map((i) => i.providerType), ["custom-function"]);

    const anon = await app.logIn(Credentials.anonymous());
    assert.deepEqual(anon.identities.map((i) => i.providerType), ["anon-user"]);
    assert.equal(app.currentUser?.id, anon.id);
  });

  it("sends realm v12's login body: provider, credentials and options.device", async () => {
    const app = env.newApp();
    const { email } = await env.newUser(app);
    const login = env.emulator.requests().reverse().find((r) => r.path.endsWith("/auth/providers/local-userpass/login"));
    assert.ok(login);
    assert.equal(login.tokenType, "none");
    const body = login.body as Record<string, any>;
    assert.equal(body.provider, "local-userpass");
    assert.equal(body.username, email);
    assert.equal(body.password, "<redacted>");
    assert.equal(body.options.device.sdk, "JS");
    assert.equal(body.options.device.frameworkName, "Node.js");
    assert.equal(body.options.device.appId, env.emulator.appId);
    // The fields realm-core 14.14 sends, in its spelling (not Node's `os.type()`/`os.arch()`).
    assert.deepEqual(Object.keys(body.options.device).sort(), [
      "appId", "bundleId", "coreVersion", "cpuArch", "deviceName", "deviceVersion",
      "frameworkName", "frameworkVersion", "platform", "platformVersion", "sdk", "sdkVersion",
    ]);
    const core = { linux: "Linux", darwin: "macOS", win32: "Windows" } as Record<string, string>;
    assert.equal(body.options.device.platform, core[process.platform]);
    assert.equal(body.options.device.cpuArch, { x64: "x86_64", arm64: "arm64" }[process.arch as "x64" | "arm64"]);
    assert.equal(body.options.device.coreVersion, "14.14.0");
    assert.equal(body.options.device.frameworkVersion, process.version);
    const profile = env.emulator.requests().reverse().find((r) => r.path.endsWith("/auth/profile"));
    assert.equal(profile?.tokenType, "access");
  });

  it("reuses a logged-in anonymous user without a request, unless asked not to", async () => {
    const app = env.newApp();
    const first = await app.logIn(Credentials.anonymous());
    env.emulator.clearRequests();
    const again = await app.logIn(Credentials.anonymous());
    assert.equal(again.id, first.id);
    assert.deepEqual(env.emulator.requests(), []);
    const fresh = await app.logIn(Credentials.anonymous(false));
    assert.notEqual(fresh.id, first.id);
  });

  it("tracks currentUser and allUsers through logout, switch and remove", async () => {
    const app = env.newApp();
    const { user: a } = await env.newUser(app);
    const { user: b } = await env.newUser(app);
    assert.equal(app.currentUser?.id, b.id);
    // realm v12 lists an in-memory App's users by id.
    assert.deepEqual(Object.keys(app.allUsers), [a.id, b.id].sort());

    app.switchUser(a);
    assert.equal(app.currentUser?.id, a.id);

    env.emulator.clearRequests();
    await a.logOut();
    assert.equal(a.state, UserState.LoggedOut);
    assert.equal(a.accessToken, null);
    assert.deepEqual(env.emulator.requests().map((r) => `${r.method} ${r.path} ${r.tokenType}`), [
      "DELETE /api/client/v2.0/auth/session refresh",
    ]);
    // currentUser falls back to the other logged-in user; a stays in allUsers.
    assert.equal(app.currentUser?.id, b.id);
    assert.ok(a.id in app.allUsers);
    // Logging out again is a no-op; switching to a logged-out user fails.
    env.emulator.clearRequests();
    await a.logOut();
    assert.deepEqual(env.emulator.requests(), []);
    assert.throws(() => app.switchUser(a), (err: any) => err.code === ErrorCode.ClientUserNotLoggedIn);

    await app.removeUser(b);
    assert.equal(b.state, UserState.Removed);
    assert.equal(app.currentUser, null);
    assert.deepEqual(Object.keys(app.allUsers), [a.id]);
    const again = await rejection(app.removeUser(b));
    assert.equal(again.code, ErrorCode.ClientUserNotFound);
    assert.equal(again.message, "User has already been removed");
  });

  it("removes an anonymous user when it logs out", async () => {
    const app = env.newApp();
    const anon = await app.logIn(Credentials.anonymous());
    await anon.logOut();
    assert.equal(anon.state, UserState.Removed);
    assert.deepEqual(app.allUsers, {});
  });

  it("refuses users of another App", async () => {
    const app = env.newApp();
    const other = env.newApp();
    const { user } = await env.newUser(other);
    assert.throws(() => app.switchUser(user), (err: any) => err.code === ErrorCode.ClientUserNotFound);
    assert.equal((await rejection(app.removeUser(user))).code, ErrorCode.ClientUserNotFound);
    assert.equal((await rejection(app.deleteUser(user))).code, ErrorCode.ClientUserNotFound);
  });

  it("deletes a user on the server with its access token", async () => {
    const app = env.newApp();
    const { user, email, password } = await env.newUser(app);
    env.emulator.clearRequests();
    await app.deleteUser(user);
    assert.equal(user.state, UserState.Removed);
    assert.deepEqual(env.emulator.requests().map((r) => `${r.method} ${r.path} ${r.tokenType}`), [
      "DELETE /api/client/v2.0/auth/delete access",
    ]);
    const err = await rejection(app.logIn(Credentials.emailPassword(email, password)));
    assert.equal(err.code, ErrorCode.InvalidPassword);
    assert.equal((await rejection(app.deleteUser(user))).code, ErrorCode.ClientUserNotLoggedIn);
  });

  it("refreshes an expired access token once and retries the call", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const before = user.accessToken;
    env.emulator.expireAccessTokens();
    env.emulator.clearRequests();
    await app.deleteUser(user);
    assert.deepEqual(env.emulator.requests().map((r) => `${r.method} ${r.path} ${r.tokenType} ${r.status}`), [
      "DELETE /api/client/v2.0/auth/delete invalid 401",
      "POST /api/client/v2.0/auth/session refresh 201",
      "DELETE /api/client/v2.0/auth/delete access 204",
    ]);
    assert.notEqual(before, null);
  });

  it("returns the original 401 when the refresh fails, and logs the user out", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    env.emulator.revokeSessions(user.id);
    env.emulator.clearRequests();
    const err = await rejection(app.deleteUser(user));
    assert.equal(err.statusCode, 401);
    assert.equal(err.url, `${env.emulator.baseUrl}/api/client/v2.0/auth/delete`);
    assert.equal(user.state, UserState.LoggedOut);
    const seen = env.emulator.requests().map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(seen.slice(0, 2), ["DELETE /api/client/v2.0/auth/delete", "POST /api/client/v2.0/auth/session"]);
    assert.equal(seen.filter((s) => s === "POST /api/client/v2.0/auth/session").length, 1);
  });

  it("links credentials to the user", async () => {
    const app = env.newApp();
    const anon = await app.logIn(Credentials.anonymous(false));
    const email = `linked-${process.pid}@example.com`;
    await app.emailPasswordAuth.registerUser({ email, password: "password-123" });
    await anon.linkCredentials(Credentials.emailPassword(email, "password-123"));
    assert.deepEqual(anon.identities.map((i) => i.providerType).sort(), ["anon-user", "local-userpass"]);
    const again = await app.logIn(Credentials.emailPassword(email, "password-123"));
    assert.equal(again.id, anon.id);
  });

  it("reads custom data from the access token and refreshes it", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    assert.deepEqual(user.customData, {});
    env.emulator.setCustomData(user.id, { plan: "pro" });
    assert.deepEqual(await user.refreshCustomData(), { plan: "pro" });
    assert.deepEqual(user.customData, { plan: "pro" });
  });

  it("util.inspect shows ids and state, never a token", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const shown = inspect(user);
    assert.match(shown, new RegExp(`^User \\{\\n  id: '${user.id}',\\n  state: 'LoggedIn',\\n  providerType: 'local-userpass',\\n  appId: '${app.id}'\\n\\}$`));
    assert.equal(inspect(app), `App {\n  id: '${app.id}',\n  baseUrl: '${app.baseUrl}',\n  currentUser: '${user.id}',\n  users: 1\n}`);
    assert.equal(inspect(user.apiKeys), `ApiKeyAuth { userId: '${user.id}', appId: '${app.id}' }`);
    assert.equal(inspect(app.emailPasswordAuth), `EmailPasswordAuth { appId: '${app.id}' }`);
    assert.equal(inspect(env.emulator), `Emulator { baseUrl: '${env.emulator.baseUrl}', appId: '${env.emulator.appId}' }`);
    for (const text of [inspect(user), inspect(app), inspect(user.apiKeys)]) {
      assert.ok(!text.includes(String(user.accessToken)) && !text.includes(String(user.refreshToken)));
    }
    // The inspect helper is not left on the objects.
    assert.equal("inspectFields" in user, false);
  });

  it("never shows tokens in toJSON, JSON.stringify or util.inspect", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const access = String(user.accessToken);
    const refresh = String(user.refreshToken);
    for (const text of [JSON.stringify(user), inspect(user, { depth: 5, showHidden: true }), JSON.stringify(app.allUsers), inspect(app)]) {
      assert.ok(!text.includes(access) && !text.includes(refresh), text);
    }
    assert.equal(JSON.parse(JSON.stringify(user)).id, user.id);
  });

  it("checks credentials arguments", () => {
    assert.throws(() => Credentials.emailPassword("", "pw"), TypeError);
    assert.throws(() => Credentials.emailPassword("a@b.c", ""), TypeError);
    assert.throws(() => Credentials.apiKey(""), TypeError);
    assert.equal(Credentials.emailPassword({ email: "a@b.c", password: "pw" }).providerType, "local-userpass");
    assert.equal(Credentials.serverApiKey("k").providerType, "api-key");
    assert.equal(Credentials.userApiKey("k").providerType, "api-key");
    assert.equal(Credentials.jwt("t").providerType, "custom-token");
  });
});

describe("EmailPasswordAuth", () => {
  it("registers users and reports a taken email", async () => {
    const app = env.newApp();
    const { email } = await env.newUser(app);
    const err = await rejection(app.emailPasswordAuth.registerUser({ email, password: "password-123" }));
    assert.equal(err.code, ErrorCode.AccountNameInUse);
    assert.ok(app.emailPasswordAuth instanceof Realm.Auth.EmailPasswordAuth);
  });

  it("resets a password with the emailed token pair", async () => {
    const app = env.newApp();
    const { email } = await env.newUser(app);
    await app.emailPasswordAuth.sendResetPasswordEmail({ email });
    const pair = env.emulator.pendingReset(email);
    assert.ok(pair);
    await app.emailPasswordAuth.resetPassword({ token: pair.token, tokenId: pair.tokenId, password: "new-password-1" });
    const user = await app.logIn(Credentials.emailPassword(email, "new-password-1"));
    assert.equal(user.state, UserState.LoggedIn);
  });
});
