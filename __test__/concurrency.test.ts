// Many users, many concurrent calls, tokens expiring: one refresh per user,
// every key the server recorded is the key the caller got, no call lost.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { App, Credentials, MetadataMode } from "realm-auth-native";

import { useEmulator } from "./helpers";

const env = useEmulator();
const USERS = 50;
const CALLS = 20;

describe("concurrency", () => {
  it(`${USERS} users x ${CALLS} concurrent calls with expired access tokens`, async () => {
    const app = env.newApp();
    const users = [];
    for (let i = 0; i < USERS; i++) users.push((await env.newUser(app)).user);
    env.emulator.expireAccessTokens();
    env.emulator.clearRequests();

    // Half the calls need the access token (profile reads: expired, so they
    // refresh), half the refresh token (key creation: unaffected).
    const results = await Promise.all(
      users.flatMap((user, u) =>
        Array.from({ length: CALLS }, (_, c) =>
          c % 2 === 0
            ? user.refreshProfile().then((profile) => ({ user, kind: "profile" as const, profile }))
            : user.apiKeys.create(`k-${u}-${c}`).then((key) => ({ user, kind: "key" as const, key })),
        ),
      ),
    );
    assert.equal(results.length, USERS * CALLS);

    const refreshes = new Map<string, number>();
    for (const r of env.emulator.requests()) {
      if (r.method === "POST" && r.path === "/api/client/v2.0/auth/session") {
        refreshes.set(String(r.userId), (refreshes.get(String(r.userId)) ?? 0) + 1);
      }
    }
    for (const user of users) assert.equal(refreshes.get(user.id), 1, `refreshes of ${user.id}`);

    // Every returned key logs in as its owner: the server recorded that exact key.
    const verifier = env.newApp();
    const keys = results.flatMap((r) => (r.kind === "key" ? [{ user: r.user, key: r.key }] : []));
    assert.equal(keys.length, (USERS * CALLS) / 2);
    for (const { user, key } of keys) {
      const owner = await verifier.logIn(Credentials.apiKey(key.key));
      assert.equal(owner.id, user.id);
    }
    for (const user of users) {
      const listed = await user.apiKeys.fetchAll();
      assert.equal(listed.length, CALLS / 2);
    }
  });

  it("users of one App are independent: one user's 401 leaves the others logged in", async () => {
    const app = env.newApp();
    const a = (await env.newUser(app)).user;
    const b = (await env.newUser(app)).user;
    env.emulator.revokeSessions(a.id);
    const outcomes = await Promise.allSettled([a.apiKeys.fetchAll(), b.apiKeys.fetchAll(), b.refreshProfile()]);
    assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "fulfilled", "fulfilled"]);
    assert.equal(a.isLoggedIn, false);
    assert.equal(b.isLoggedIn, true);
  });

  it("two Apps with one id and base URL share their users; another base URL shares nothing", async () => {
    const one = env.newApp();
    const two = new App({ id: env.emulator.appId, baseUrl: env.emulator.baseUrl });
    const { user } = await env.newUser(one);
    assert.deepEqual(Object.keys(two.allUsers), [user.id]);
    assert.equal(two.currentUser?.id, user.id);
    const elsewhere = new App({
      id: env.emulator.appId,
      baseUrl: env.emulator.baseUrl.replace("127.0.0.1", "localhost"),
      metadata: { mode: MetadataMode.InMemory },
    });
    assert.deepEqual(elsewhere.allUsers, {});
  });
});
