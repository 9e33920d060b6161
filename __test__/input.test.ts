// Bad input to every public function: a TypeError (thrown by constructors and
// factories, a rejection from async methods) or a typed server error; never a
// crash, never a request carrying garbage.
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { describe, it } from "node:test";
import { App, Credentials, ErrorCode, UserState } from "realm-auth-native";

import { rejection, useEmulator } from "./helpers";

const env = useEmulator();
const WRONG: unknown[] = [undefined, null, 42, true, {}, [], () => {}, Symbol("s"), 10n];
const NOT_STRINGS = WRONG.filter((v) => typeof v !== "string");

function isTypeError(err: unknown): boolean {
  return err instanceof TypeError && (err as { code?: number }).code === ErrorCode.InvalidArgument;
}

describe("bad input", () => {
  it("constructors and factories throw TypeErrors", () => {
    const any = (v: unknown) => v as never;
    for (const v of WRONG) {
      assert.throws(() => new App(any(v)), isTypeError, `new App(${String(v)})`);
      assert.throws(() => Credentials.apiKey(any(v)), isTypeError);
      assert.throws(() => Credentials.jwt(any(v)), isTypeError);
      assert.throws(() => Credentials.emailPassword(any(v), "pw"), isTypeError);
      assert.throws(() => Credentials.emailPassword("a@b.c", any(v)), isTypeError);
    }
    for (const v of [42, "x", null, []]) assert.throws(() => Credentials.function(v as never), isTypeError);
    assert.throws(() => Credentials.anonymous("yes" as never), isTypeError);
    for (const config of [{}, { id: 5 }, { id: "x", baseUrl: 5 }, { id: "x", timeout: "1" }, { id: "x", retries: 11 }, { id: "x", retries: -1 }, { id: "a\u0000b" }, { id: "x", baseUrl: "http://\u0000" }]) {
      assert.throws(() => new App(config as never), isTypeError, JSON.stringify(config));
    }
    assert.throws(() => Credentials.emailPassword({ email: "a@b.c" } as never), isTypeError);
    assert.throws(() => Credentials.apiKey(""), isTypeError);
  });

  it("async methods reject with TypeErrors and send nothing", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    env.emulator.clearRequests();
    const any = (v: unknown) => v as never;
    for (const v of NOT_STRINGS) {
      for (const call of [
        () => user.apiKeys.create(any(v)),
        () => user.apiKeys.fetch(any(v)),
        () => user.apiKeys.enable(any(v)),
        () => user.apiKeys.disable(any(v)),
        () => user.apiKeys.delete(any(v)),
        () => app.logIn(any(v)),
        () => app.removeUser(any(v)),
        () => app.deleteUser(any(v)),
        () => user.linkCredentials(any(v)),
        () => app.emailPasswordAuth.registerUser(any(v)),
        () => app.emailPasswordAuth.registerUser(any({ email: v, password: "password-1" })),
        () => app.emailPasswordAuth.confirmUser(any({ token: "t", tokenId: v })),
        () => app.emailPasswordAuth.resetPassword(any({ token: "t", tokenId: "i", password: v })),
        () => app.emailPasswordAuth.sendResetPasswordEmail(any(v)),
        () => app.emailPasswordAuth.callResetPasswordFunction(any({ email: v, password: "p" })),
      ]) {
        let result: Promise<unknown>;
        assert.doesNotThrow(() => {
          result = call();
        }, "async methods must not throw synchronously");
        assert.ok(isTypeError(await rejection(result!)), String(call));
      }
    }
    // A user object is not a credentials object, and the other way round.
    assert.ok(isTypeError(await rejection(app.logIn(user as never))));
    assert.throws(() => app.switchUser(Credentials.anonymous() as never), isTypeError);
    assert.deepEqual(env.emulator.requests(), []);
  });

  it("an argument's getter or method that throws: the call rejects with what it threw, hooks nothing and changes nothing", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    const key = await user.apiKeys.create("thrown");
    env.emulator.clearRequests();
    const controller = new AbortController();
    const { signal } = controller;
    for (const thrown of [new RangeError("getter threw"), "a string thrown"]) {
      const raise = () => {
        throw thrown;
      };
      const badTimeout = { signal, get timeout() { return raise(); } };
      const badSignal = { aborted: false, addEventListener: raise, removeEventListener() {} };
      // The signal is hooked first, then the key id's toHexString throws.
      const badId = { toHexString: raise } as never;
      const calls: Array<() => Promise<unknown>> = [
        () => user.apiKeys.fetch(badId, { signal }),
        () => user.apiKeys.enable(badId, { signal }),
        () => user.apiKeys.disable(badId, { signal }),
        () => user.apiKeys.delete(badId, { signal }),
        () => user.apiKeys.fetchAll(badTimeout),
        () => user.apiKeys.create("never", { signal: badSignal as never }),
        () => user.refreshProfile(badTimeout),
        () => user.logOut(badTimeout),
        () => app.removeUser(user, badTimeout),
        () => app.logIn(Credentials.anonymous(), badTimeout),
        () => app.emailPasswordAuth.registerUser({ get email() { return raise(); }, password: "password-1" } as never),
        () => app.emailPasswordAuth.sendResetPasswordEmail({ email: "a@b.c" }, badTimeout),
      ];
      for (const call of calls) {
        let result!: Promise<unknown>;
        assert.doesNotThrow(() => {
          result = call();
        }, String(call));
        await assert.rejects(result, (e) => e === thrown, String(call));
        assert.equal(getEventListeners(signal, "abort").length, 0, `a listener stayed on the signal: ${call}`);
      }
    }
    // Nothing was sent, and the logout and the removal did not happen.
    assert.deepEqual(env.emulator.requests(), []);
    assert.equal(user.state, UserState.LoggedIn);
    assert.equal(app.currentUser?.id, user.id);
    assert.equal((await user.apiKeys.fetch(key._id)).name, "thrown");
  });

  it("sends strange but valid strings as data, and the server's rules answer", async () => {
    const app = env.newApp();
    const { user } = await env.newUser(app);
    for (const name of ["", "x".repeat(10_000), "ключ", "a\u0000b", "a b", "../../etc"]) {
      const err = await rejection(user.apiKeys.create(name));
      assert.equal(err.code, ErrorCode.InvalidParameter, JSON.stringify(name.slice(0, 20)));
    }
    const huge = await rejection(user.apiKeys.create("x".repeat(2 * 1024 * 1024)));
    assert.equal(huge.statusCode, 413);
    const login = await rejection(app.logIn(Credentials.emailPassword("nobody\u0000@example.com", "pässwörd\u0000")));
    assert.equal(login.code, ErrorCode.InvalidPassword);
    assert.equal(user.state, UserState.LoggedIn);
  });

  it("refuses users that are removed, logged out or from another App", async () => {
    const app = env.newApp();
    const other = env.newApp();
    const { user: foreign } = await env.newUser(other);
    const { user } = await env.newUser(app);
    await app.removeUser(user);
    env.emulator.clearRequests();
    assert.equal((await rejection(user.apiKeys.fetchAll())).code, ErrorCode.ClientUserNotLoggedIn);
    assert.equal((await rejection(app.deleteUser(user))).code, ErrorCode.ClientUserNotLoggedIn);
    assert.equal((await rejection(app.removeUser(user))).code, ErrorCode.ClientUserNotFound);
    // realm-core checks the state first: a removed user is not logged in.
    assert.throws(() => app.switchUser(user), (e: any) => e.code === ErrorCode.ClientUserNotLoggedIn);
    assert.equal((await rejection(app.removeUser(foreign))).code, ErrorCode.ClientUserNotFound);
    assert.equal((await rejection(user.refreshCustomData())).code, ErrorCode.ClientUserNotLoggedIn);
    assert.equal((await rejection(user.linkCredentials(Credentials.anonymous()))).code, ErrorCode.ClientUserNotLoggedIn);
    assert.deepEqual(env.emulator.requests(), []);
  });
});
