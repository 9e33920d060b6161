// realm v12's `fetch` option: an App's requests go through the given function
// (refreshes and retries included), and only that App's.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App, Credentials, ErrorCode, MetadataMode, type FetchInit } from "realm-auth-native";

import { rejection, useEmulator } from "./helpers";

const env = useEmulator();

/** A fetch that records what it is asked, then asks Node's fetch. */
function recordingFetch() {
  const seen: { url: string; init: FetchInit }[] = [];
  const fetch = (url: string, init: FetchInit) => {
    seen.push({ url, init });
    return globalThis.fetch(url, init);
  };
  return { seen, fetch };
}

describe("the fetch option", () => {
  it("sees every request of its App, refreshes and retries included, and none of another App", async () => {
    const { seen, fetch } = recordingFetch();
    const app = env.newApp({ fetch });
    env.emulator.clearRequests();
    const { user } = await env.newUser(app);
    env.emulator.expireAccessTokens();
    await user.refreshProfile();
    env.emulator.injectFault({ path: "auth/api_keys", action: { type: "respond", status: 503, body: "" } });
    await user.apiKeys.fetchAll();
    const served = env.emulator.requests().map((r) => `${r.method} ${r.path}`);
    const sent = seen.map((s) => `${s.init.method} ${new URL(s.url).pathname}`);
    assert.deepEqual(sent, served);
    assert.ok(served.includes("POST /api/client/v2.0/auth/session"), "a refresh");
    assert.equal(served.filter((s) => s === "GET /api/client/v2.0/auth/api_keys").length, 2, "a retry");

    // Headers as the SDK sends them: a content-type only with a body, the token as a bearer.
    const login = seen.find((s) => s.url.endsWith("/auth/providers/local-userpass/login"))!;
    assert.equal(login.init.headers["content-type"], "application/json;charset=utf-8");
    assert.equal(typeof login.init.body, "string");
    const keys = seen.find((s) => s.url.endsWith("/auth/api_keys"))!;
    assert.equal(keys.init.headers["content-type"], undefined);
    assert.equal(keys.init.headers.authorization, `Bearer ${user.refreshToken}`);
    assert.ok(keys.init.signal instanceof AbortSignal);
    // The SDK applies its own redirect rule: the fetch must not follow any.
    for (const { url, init } of seen) assert.equal(init.redirect, "manual", url);

    const before = seen.length;
    const other = new App({ id: env.emulator.appId, baseUrl: env.emulator.baseUrl, metadata: { mode: MetadataMode.InMemory } });
    await other.logIn(Credentials.anonymous(false));
    assert.equal(seen.length, before, "another App's requests do not go through it");
  });

  it("fails a request whose fetch rejects as realm v12 does, keeping the rejection as the cause", async () => {
    const boom = new Error("Boom!");
    const app = new App({
      id: "fetch-app",
      baseUrl: env.emulator.baseUrl,
      metadata: { mode: MetadataMode.InMemory },
      fetch: async () => {
        throw boom;
      },
      retries: 0,
    });
    const err = await rejection(app.logIn(Credentials.anonymous()));
    assert.equal(err.code, ErrorCode.NetworkError);
    assert.equal(err.message, `request to ${env.emulator.baseUrl}/api/client/v2.0/app/fetch-app/location failed, reason: Boom!`);
    assert.equal(err.cause, boom);
    // Errors without one have no cause.
    const other = await rejection(env.newApp().logIn(Credentials.emailPassword("nobody@example.com", "wrong-password")));
    assert.equal(other.cause, undefined);
  });

  it("refuses a fetch option that is not a function", () => {
    assert.throws(
      () => new App({ id: "x", fetch: 42, metadata: { mode: MetadataMode.InMemory } } as never),
      (err: any) => err.code === ErrorCode.InvalidArgument && err instanceof TypeError,
    );
  });
});
