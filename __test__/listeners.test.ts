// realm v12's change listeners (app.addListener, user.addListener): one call
// per change, with the new state visible, synchronously for local changes;
// who owns a listener; a throwing listener; and the process still exits.
// Also: local state changes are visible on the line after the call.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { App, Credentials, ErrorCode, MetadataMode, UserState } from "realm-auth-native";

import { rejection, useEmulator } from "./helpers";

const env = useEmulator();

/** Lets queued listener calls and settlements run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 30));

/** A second App object for the same id and base URL (it shares the users). */
function sameApp(): App {
  return new App({ id: env.emulator.appId, baseUrl: env.emulator.baseUrl, metadata: { mode: MetadataMode.InMemory } });
}

describe("addListener", () => {
  it("refuses a callback added twice and a callback that is not a function", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const cb = () => {};
    for (const target of [app, user]) {
      target.addListener(cb);
      assert.throws(
        () => target.addListener(cb),
        (err: any) => err instanceof Error && !(err instanceof TypeError) && err.message === "Remove callback before adding it again",
      );
      for (const bad of [42, "cb", null, undefined, {}]) {
        assert.throws(() => target.addListener(bad as any), TypeError);
      }
      target.removeListener(cb);
      target.addListener(cb);
      target.removeAllListeners();
      target.addListener(cb);
      target.removeListener(cb);
      // Removing what was never added is not an error.
      target.removeListener(() => {});
    }
  });
});

describe("App listeners", () => {
  it("run once per login, reuse, switch, logout, removal and deletion, and see the new state", async () => {
    const app = env.newApp();
    const seen: Array<string | null> = [];
    app.addListener(() => seen.push(app.currentUser?.id ?? null));

    const pending = app.logIn(Credentials.anonymous(false));
    assert.deepEqual(seen, [], "a login is not done before it resolves");
    const anon = await pending;
    assert.deepEqual(seen, [anon.id], "login");

    const { user: a } = await env.newUser(app);
    assert.deepEqual(seen.slice(1), [a.id], "second login");

    env.emulator.clearRequests();
    const reused = await app.logIn(Credentials.anonymous());
    assert.equal(reused.id, anon.id);
    assert.deepEqual(env.emulator.requests(), []);
    assert.deepEqual(seen.slice(2), [anon.id], "anonymous reuse");

    app.switchUser(a);
    assert.deepEqual(seen.slice(3), [a.id], "switchUser, synchronously");

    const out = a.logOut();
    assert.deepEqual(seen.slice(4), [anon.id], "logOut, synchronously, with the fallback current");
    await out;
    // What changes nothing calls nothing: a second logout, a refused switch.
    await a.logOut();
    assert.throws(() => app.switchUser(a), (err: any) => err.code === ErrorCode.ClientUserNotLoggedIn);
    assert.equal(seen.length, 5);

    const { user: b } = await env.newUser(app);
    assert.equal(seen.length, 6);
    const removal = app.removeUser(b);
    assert.deepEqual(seen.slice(6), [anon.id], "removeUser, synchronously");
    await removal;

    await app.deleteUser(anon);
    assert.deepEqual(seen.slice(7), [null], "deleteUser, by the time it resolves");

    // Nothing more arrives later: exactly one call per change.
    await settle();
    assert.equal(seen.length, 8, JSON.stringify(seen));
  });

  it("belong to the App object: another App of the same id has its own list, and both are called", async () => {
    const one = env.newApp();
    const two = sameApp();
    const calls: string[] = [];
    const shared = () => calls.push("shared");
    one.addListener(shared);
    two.addListener(shared); // no "Remove callback before adding it again": another list
    two.addListener(() => calls.push("two"));

    const { user } = await env.newUser(one);
    assert.deepEqual(calls.sort(), ["shared", "shared", "two"]);

    calls.length = 0;
    one.removeAllListeners();
    one.switchUser(user);
    assert.deepEqual(calls.sort(), ["shared", "two"]);

    calls.length = 0;
    two.removeListener(shared);
    two.switchUser(user);
    assert.deepEqual(calls, ["two"]);
    await settle();
    assert.deepEqual(calls, ["two"]);
  });
});

describe("removing listeners", () => {
  it("ends their subscription, and adding one again subscribes anew", async () => {
    const app = env.newApp();
    let calls = 0;
    const count = () => calls++;
    for (let round = 0; round < 3; round++) {
      app.addListener(count);
      const user = await app.logIn(Credentials.anonymous(false));
      app.removeAllListeners();
      await user.logOut();
      const userCalls: string[] = [];
      const onUser = () => userCalls.push("user");
      user.addListener(onUser);
      user.removeListener(onUser);
      await app.logIn(Credentials.anonymous(false));
      assert.deepEqual(userCalls, []);
    }
    // One login event per round, none after the listener was removed.
    assert.equal(calls, 3);
  });
});

describe("User listeners", () => {
  it("run on login, token refresh, profile, logout and removal; then they are dropped", async () => {
    const app = env.newApp();
    const { user, email, password } = await env.newUser(app);
    await user.logOut();

    const log: string[] = [];
    user.addListener(() => log.push(`user:${user.state}`));
    app.addListener(() => log.push("app"));

    // A login of a known (logged-out) user: its session, then its profile.
    await app.logIn(Credentials.emailPassword(email, password));
    assert.deepEqual(log, ["user:LoggedIn", "user:LoggedIn", "app"]);

    log.length = 0;
    await user.refreshCustomData();
    assert.deepEqual(log, ["user:LoggedIn"], "refreshCustomData: a new access token");

    log.length = 0;
    await user.refreshProfile();
    assert.deepEqual(log, ["user:LoggedIn"], "refreshProfile: a new profile");

    log.length = 0;
    env.emulator.expireAccessTokens();
    await user.refreshProfile();
    assert.deepEqual(log, ["user:LoggedIn", "user:LoggedIn"], "an expired access token: refreshed, then the profile");

    // A logout: synchronously, the user's listeners before the App's.
    log.length = 0;
    const out = user.logOut();
    assert.deepEqual(log, ["user:LoggedOut", "app"]);
    await out;

    const again = await app.logIn(Credentials.emailPassword(email, password));
    log.length = 0;
    const removal = app.removeUser(again);
    assert.deepEqual(log, ["user:Removed", "app"], "removeUser, synchronously");
    await removal;

    // The removed user's listeners are gone: a new login of the same id does not call them.
    log.length = 0;
    const back = await app.logIn(Credentials.emailPassword(email, password));
    assert.equal(back.id, user.id);
    await back.refreshCustomData();
    await settle();
    assert.deepEqual(log, ["app"]);
  });

  it("an anonymous user's listeners end with its logout", async () => {
    const app = env.newApp();
    const anon = await app.logIn(Credentials.anonymous(false));
    let calls = 0;
    const cb = () => calls++;
    anon.addListener(cb);
    await anon.logOut();
    assert.equal(calls, 1);
    assert.equal(anon.state, UserState.Removed);
    // Nothing is left registered for that user: the callback can be added again.
    anon.addListener(cb);
    anon.removeListener(cb);
  });

  it("belong to the user, not the User object", async () => {
    const app = env.newApp();
    await env.newUser(app);
    let calls = 0;
    const cb = () => calls++;

    app.currentUser!.addListener(cb);
    assert.notEqual(app.currentUser, app.currentUser);
    assert.throws(() => app.currentUser!.addListener(cb), /Remove callback before adding it again/);
    await app.currentUser!.refreshCustomData();
    assert.equal(calls, 1, "a listener added through one object is called for the user");

    app.currentUser!.removeListener(cb);
    await app.currentUser!.refreshCustomData();
    await settle();
    assert.equal(calls, 1, "removed through another object");

    app.currentUser!.addListener(cb);
    app.currentUser!.addListener(() => calls++);
    Object.values(app.allUsers)[0].removeAllListeners();
    await app.currentUser!.refreshCustomData();
    await settle();
    assert.equal(calls, 1, "removeAllListeners through another object");
  });
});

describe("a listener that throws", () => {
  it("does not stop the call or the other listeners, and reaches uncaughtException", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const uncaught: string[] = [];
    const counts = { app: 0, user: 0 };

    // node:test fails a test on an uncaught exception: take its handlers out meanwhile.
    const saved = process.listeners("uncaughtException");
    process.removeAllListeners("uncaughtException");
    const handler = (err: Error) => uncaught.push(err.message);
    process.on("uncaughtException", handler);
    try {
      app.addListener(() => {
        throw new Error("app listener threw");
      });
      app.addListener(() => counts.app++);
      user.addListener(() => {
        throw new Error("user listener threw");
      });
      user.addListener(() => counts.user++);

      const anon = await app.logIn(Credentials.anonymous(false));
      assert.equal(anon.state, UserState.LoggedIn);
      assert.equal(counts.app, 1);

      assert.doesNotThrow(() => app.switchUser(user));
      assert.equal(counts.app, 2);
      assert.equal(app.currentUser?.id, user.id);

      const out = user.logOut();
      assert.equal(user.state, UserState.LoggedOut);
      assert.deepEqual(counts, { app: 3, user: 1 });
      await out;
      await settle();
    } finally {
      process.removeListener("uncaughtException", handler);
      for (const listener of saved) process.on("uncaughtException", listener);
    }
    assert.deepEqual(uncaught, ["app listener threw", "app listener threw", "user listener threw", "app listener threw"]);
  });
});

describe("process exit", () => {
  it("listeners do not keep the process alive", () => {
    const script = join(__dirname, "fixtures", "idle-listeners.js");
    const run = spawnSync(process.execPath, [script], { encoding: "utf8", timeout: 15_000 });
    const exitedAt = Date.now();
    assert.equal(run.signal, null, `still running after 15 s: ${run.stderr}`);
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout.trim()) as { appEvents: number; userEvents: number; finishedAt: number };
    assert.equal(report.appEvents, 1);
    assert.equal(report.userEvents, 1);
    assert.ok(exitedAt - report.finishedAt < 3000, `exited ${exitedAt - report.finishedAt} ms after its last call`);
  });
});

describe("local state changes", () => {
  it("logOut leaves no current user on the very next line, 1,000 times", async () => {
    const app = env.newApp();
    const started = Date.now();
    for (let i = 0; i < 1000; i++) {
      const user = await app.logIn(Credentials.anonymous(false));
      assert.equal(app.currentUser?.id, user.id);
      const out = user.logOut();
      assert.equal(app.currentUser, null, `iteration ${i}`);
      assert.equal(user.state, UserState.Removed);
      await out;
    }
    assert.deepEqual(app.allUsers, {});
    assert.ok(Date.now() - started < 30_000);
  });

  it("removeUser removes the user before it returns", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const removal = app.removeUser(user);
    assert.equal(user.state, UserState.Removed);
    assert.equal(app.currentUser, null);
    assert.deepEqual(app.allUsers, {});
    await removal;
  });
});

describe("linkCredentials", () => {
  it("refuses anonymous credentials without a request", async () => {
    const app = env.newApp();
    const anon = await app.logIn(Credentials.anonymous(false));
    env.emulator.clearRequests();
    const err = await rejection(anon.linkCredentials(Credentials.anonymous()));
    assert.equal(err.code, ErrorCode.ClientUserAlreadyNamed);
    assert.equal(err.code, 4105);
    assert.deepEqual(env.emulator.requests(), []);
  });

  it("makes the linked user current and adds the identity", async () => {
    const app = env.newApp();
    const anon = await app.logIn(Credentials.anonymous(false));
    const { user: other } = await env.newUser(app);
    assert.equal(app.currentUser?.id, other.id);
    const email = `link-${process.pid}-${Date.now()}@example.com`;
    await app.emailPasswordAuth.registerUser({ email, password: "password-123" });
    let appEvents = 0;
    app.addListener(() => appEvents++);

    await anon.linkCredentials(Credentials.emailPassword(email, "password-123"));
    assert.equal(app.currentUser?.id, anon.id);
    assert.deepEqual(anon.identities.map((i) => i.providerType).sort(), ["anon-user", "local-userpass"]);
    assert.equal(anon.profile.email, email);
    assert.equal(appEvents, 1);
    // No longer only anonymous: logging out keeps it.
    await anon.logOut();
    assert.equal(anon.state, UserState.LoggedOut);
  });
});
