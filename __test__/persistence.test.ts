// The user store (realm v12's metadata): users survive a restart, in the file
// and folder realm names, as processes that exit, crash or write at the same
// time leave them; encryption, a corrupt file, and the app cache that Apps of
// one id and base URL share.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Realm, {
  App,
  Credentials,
  ErrorCode,
  type LogLevel,
  type Metadata,
  MetadataMode,
  setLogLevel,
  setLogger,
  shutdown,
  UserState,
} from "realm-auth-native";

import { useEmulator } from "./helpers";

const env = useEmulator();
const PASSWORD = "password-123";
const FIXTURE = join(__dirname, "fixtures", "store-process.js");

const dirs: string[] = [];
const children = new Set<ChildProcess>();
after(() => {
  for (const child of children) child.kill("SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder under the OS temp dir, removed after the file's tests. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "ran-store-"));
  dirs.push(dir);
  return dir;
}

/** `<base>/mongodb-realm/<app id>`. */
function storeDir(base: string): string {
  return join(base, "mongodb-realm", env.emulator.appId);
}

/** A "restarted" App on the store under `base`: the app cache is cleared first. */
function storeApp(base: string, metadata?: Metadata): App {
  shutdown();
  return new App({ id: env.emulator.appId, baseUrl: env.emulator.baseUrl, baseFilePath: base, ...(metadata && { metadata }) });
}

let emails = 0;
function newEmail(tag: string): string {
  return `${tag}-${++emails}-${process.pid}@example.com`;
}

/** A user created on the emulator and logged in on `app`. */
async function logInNew(app: App, tag = "store") {
  const email = newEmail(tag);
  await env.emulator.createUser(email, PASSWORD);
  return { email, user: await app.logIn(Credentials.emailPassword(email, PASSWORD)) };
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the store-process fixture in `cwd` against this file's emulator. */
function storeProcess(cwd: string, args: string[], timeoutMs = 30_000) {
  const child = spawn(process.execPath, [FIXTURE, ...args], {
    cwd,
    env: { ...process.env, RAN_APP_ID: env.emulator.appId, RAN_BASE_URL: env.emulator.baseUrl },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const exited: Promise<Exit> = once(child, "exit").then(([code, signal]) => {
    clearTimeout(timer);
    children.delete(child);
    return { code, signal, stdout, stderr } as Exit;
  });
  /** Resolves once the child printed `text`; rejects if it exits first. */
  const printed = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (stdout.includes(text)) {
          child.stdout.off("data", check);
          resolve();
        }
      };
      child.stdout.on("data", check);
      check();
      void exited.then((e) => reject(new Error(`exited (${e.code ?? e.signal}) before printing ${text}: ${e.stderr}`)));
    });
  return { child, exited, printed };
}

/** The JSON the child printed last, after checking it exited cleanly. */
function report(exit: Exit): any {
  assert.equal(exit.signal, null, `killed: ${exit.stderr}`);
  assert.equal(exit.code, 0, exit.stderr);
  const lines = exit.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

/** Every file (not folder) under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((name) => !statSync(join(dir, name)).isDirectory());
}

function corruptFiles(base: string): string[] {
  return readdirSync(storeDir(base)).filter((n) => n.startsWith("users.store.corrupt-"));
}

describe("user store", () => {
  it("keeps users in <baseFilePath>/mongodb-realm/<app id>/users.store, 0600 in a 0700 folder", async () => {
    assert.equal(MetadataMode.NoEncryption, "noEncryption");
    assert.equal(MetadataMode.Encryption, "encryption");
    assert.equal(MetadataMode.NoMetadata, "noMetadata");
    assert.equal(MetadataMode.InMemory, "inMemory");

    const base = tempDir();
    const app = storeApp(base);
    const { user, email } = await logInNew(app);
    const file = join(storeDir(base), "users.store");
    assert.ok(existsSync(file), "no users.store");
    if (process.platform !== "win32") {
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(statSync(storeDir(base)).mode & 0o777, 0o700);
    }
    // The default mode is the plain file: the id and email are readable in it.
    const text = readFileSync(file, "utf8");
    assert.ok(text.includes(user.id) && text.includes(email));
  });

  it("writes nothing in InMemory or NoMetadata mode", async () => {
    for (const mode of [MetadataMode.InMemory, MetadataMode.NoMetadata]) {
      const base = tempDir();
      const app = storeApp(base, { mode });
      const { user } = await logInNew(app);
      await user.logOut();
      await app.logIn(Credentials.anonymous(false));
      assert.deepEqual(filesUnder(base), [], mode);
      // Nor does a restart find anything.
      assert.deepEqual(storeApp(base, { mode }).allUsers, {}, mode);
    }
  });

  it("shutdown() forgets the app cache: the next App reads the store again", async () => {
    assert.equal(Realm.shutdown, shutdown);
    const base = tempDir();
    const app = storeApp(base);
    const { user } = await logInNew(app);

    const restarted = storeApp(base);
    assert.notEqual(restarted, app);
    assert.deepEqual(Object.keys(restarted.allUsers), [user.id]);
    assert.equal(restarted.currentUser?.id, user.id);
    assert.equal(restarted.currentUser?.accessToken, user.accessToken);

    // What it found came from the file: without it, the next App has nobody.
    rmSync(join(storeDir(base), "users.store"));
    assert.deepEqual(Object.keys(restarted.allUsers), [user.id], "an App already made keeps its users");
    const empty = storeApp(base);
    assert.deepEqual(empty.allUsers, {});
    assert.equal(empty.currentUser, null);
  });

  it("a second process finds the first one's users and calls without logging in", async () => {
    const cwd = tempDir();
    const emailA = newEmail("first-a");
    const emailB = newEmail("first-b");
    const first = report(await storeProcess(cwd, ["first", emailA, emailB, PASSWORD]).exited);
    // No baseFilePath: realm v12's default is the working directory.
    assert.ok(existsSync(join(storeDir(cwd), "users.store")));
    assert.equal(first.current.email, emailA);
    assert.equal(first.allUsers.length, 3);

    env.emulator.clearRequests();
    const second = report(await storeProcess(cwd, ["second"]).exited);
    assert.deepEqual(second.current, first.current);
    assert.equal(second.current.state, "LoggedIn");
    assert.deepEqual(second.current.identities.map((i: any) => i.providerType), ["local-userpass"]);
    assert.equal(second.current.providerType, "local-userpass");
    assert.match(String(second.current.deviceId), /^[0-9a-f]{24}$/);
    assert.deepEqual(second.allUsers, first.allUsers);
    assert.deepEqual(second.users, first.users);
    assert.deepEqual(second.keys, ["persisted"]);

    const seen = env.emulator.requests();
    assert.deepEqual(seen.filter((r) => r.path.includes("/login")), [], "the second process logged in");
    const keyCalls = seen.filter((r) => r.path === "/api/client/v2.0/auth/api_keys");
    assert.deepEqual(keyCalls.map((r) => [r.method, r.tokenType, r.userId, r.status]), [["GET", "refresh", first.current.id, 200]]);
  });

  it("a process killed in the middle of a burst of writes leaves a store the next one reads", async () => {
    const cwd = tempDir();
    const email = newEmail("burst");
    await env.emulator.createUser(email, PASSWORD);
    for (let round = 1; round <= 4; round++) {
      const burst = storeProcess(cwd, ["burst", email, PASSWORD]);
      // The child opens the store the previous one was killed over.
      await burst.printed("ready");
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 250));
      burst.child.kill("SIGKILL");
      const exit = await burst.exited;
      assert.equal(exit.signal, "SIGKILL", `exited on its own: ${exit.stderr}`);

      const app = storeApp(cwd);
      const users = Object.values(app.allUsers);
      const anchor = users.find((u) => u.profile.email === email);
      assert.ok(anchor, `round ${round}: the logged-in user is gone`);
      assert.equal(anchor.state, UserState.LoggedIn);
      // Each killed process leaves at most the anonymous user it was busy with.
      const anonymous = users.filter((u) => u !== anchor);
      assert.ok(anonymous.length <= round, `round ${round}: ${anonymous.length} anonymous users`);
      for (const u of anonymous) assert.equal(u.providerType, "anon-user");
      assert.deepEqual(corruptFiles(cwd), [], `round ${round}: the store was corrupt`);
      // The dead process's lock is gone: this process can write.
      const fresh = await app.logIn(Credentials.anonymous(false), { timeout: 5000 });
      await fresh.logOut();
    }
  });

  it("two processes writing one store at once lose no user and no logout", async () => {
    const cwd = tempDir();
    const COUNT = 125;
    const prefixes = [`w0-${process.pid}`, `w1-${process.pid}`];
    for (const prefix of prefixes) {
      await Promise.all(Array.from({ length: COUNT }, (_, i) => env.emulator.createUser(`${prefix}-${i}@example.com`, PASSWORD)));
    }
    const started = Date.now();
    const exits = await Promise.all(prefixes.map((p) => storeProcess(cwd, ["writer", p, String(COUNT), PASSWORD], 60_000).exited));
    const written: string[][] = exits.map((e) => report(e).ids);
    const elapsed = Date.now() - started;

    // This process is the third: it sees every user of both, in each writer's order.
    const app = storeApp(cwd);
    const all = app.allUsers;
    assert.equal(Object.keys(all).length, 2 * COUNT, `users in the store (writers took ${elapsed} ms)`);
    written.forEach((ids, w) => {
      assert.equal(new Set(ids).size, COUNT);
      const stored = Object.keys(all).filter((id) => ids.includes(id));
      assert.deepEqual(stored, ids, `writer ${w}'s users in login order`);
      ids.forEach((id, i) => {
        const expected = i % 2 === 0 ? UserState.LoggedOut : UserState.LoggedIn;
        assert.equal(all[id].state, expected, `writer ${w}'s user ${i}`);
        assert.equal(all[id].profile.email, `${prefixes[w]}-${i}@example.com`);
      });
    });
    assert.deepEqual(corruptFiles(cwd), []);
  });

  it("keeps logOut, removeUser and deleteUser across a restart as realm v12 does", async () => {
    const base = tempDir();
    const app = storeApp(base);
    const { user: out, email: outEmail } = await logInNew(app, "out");
    const { user: keeper } = await logInNew(app, "keeper");
    const anon = await app.logIn(Credentials.anonymous(false));
    const { user: removed } = await logInNew(app, "removed");
    const { user: deleted } = await logInNew(app, "deleted");

    await out.logOut();
    await anon.logOut();
    await app.removeUser(removed);
    await app.deleteUser(deleted);

    const restarted = storeApp(base);
    const all = restarted.allUsers;
    assert.deepEqual(Object.keys(all), [out.id, keeper.id]);
    assert.equal(all[out.id].state, UserState.LoggedOut);
    assert.equal(all[out.id].accessToken, null);
    assert.equal(all[out.id].refreshToken, null);
    assert.equal(all[out.id].profile.email, outEmail);
    assert.deepEqual(all[out.id].identities.map((i) => i.providerType), ["local-userpass"]);
    assert.equal(all[keeper.id].state, UserState.LoggedIn);
    assert.equal(restarted.currentUser?.id, keeper.id);

    // The logged-out user logs in again in place: the store order is kept.
    await restarted.logIn(Credentials.emailPassword(outEmail, PASSWORD));
    assert.deepEqual(Object.keys(storeApp(base).allUsers), [out.id, keeper.id]);
  });

  it("after the current user logs out, the first logged-in user in store order is current", async () => {
    const base = tempDir();
    const app = storeApp(base);
    // Two users whose store order is the reverse of their id order.
    const x = newEmail("order");
    const y = newEmail("order");
    const ids = (await Promise.all([env.emulator.createUser(x, PASSWORD), env.emulator.createUser(y, PASSWORD)])).sort((a, b) => (a.id < b.id ? -1 : 1));
    const [low, high] = ids;
    await app.logIn(Credentials.emailPassword(high.email, PASSWORD));
    await app.logIn(Credentials.emailPassword(low.email, PASSWORD));
    const { user: last } = await logInNew(app, "order");
    assert.deepEqual(Object.keys(app.allUsers), [high.id, low.id, last.id]);
    assert.equal(app.currentUser?.id, last.id);

    await last.logOut();
    assert.equal(app.currentUser?.id, high.id);
    assert.equal(storeApp(base).currentUser?.id, high.id);
  });

  it("restores a logged-in anonymous user and reuses it without a request", async () => {
    const base = tempDir();
    const anon = await storeApp(base).logIn(Credentials.anonymous());
    const restarted = storeApp(base);
    env.emulator.clearRequests();
    const again = await restarted.logIn(Credentials.anonymous());
    assert.equal(again.id, anon.id);
    assert.deepEqual(env.emulator.requests(), []);
  });

  it("writes a refreshed access token to the store", async () => {
    const base = tempDir();
    const { user } = await logInNew(storeApp(base));
    const stale = user.accessToken;
    env.emulator.expireAccessTokens();
    await user.refreshProfile();
    assert.notEqual(user.accessToken, stale);
    const restored = storeApp(base).allUsers[user.id];
    assert.equal(restored.accessToken, user.accessToken);
    env.emulator.clearRequests();
    await restored.refreshProfile();
    const calls = env.emulator.requests().filter((r) => !r.path.endsWith("/location"));
    assert.deepEqual(calls.map((r) => `${r.method} ${r.path} ${r.status}`), ["GET /api/client/v2.0/auth/profile 200"]);
  });
});

describe("encrypted user store", () => {
  const encrypted = (key: ArrayBuffer | ArrayBufferView): Metadata => ({ mode: MetadataMode.Encryption, encryptionKey: key });

  it("round-trips across a restart with the key as a Buffer, an ArrayBuffer or a Uint8Array, and hides what it holds", async () => {
    const base = tempDir();
    // A Buffer that is a view into the middle of a larger buffer.
    const backing = randomBytes(100);
    const key = backing.subarray(10, 74);
    const app = storeApp(base, encrypted(key));
    const { user, email } = await logInNew(app, "enc");
    const file = join(storeDir(base), "users.store");
    const bytes = readFileSync(file);
    for (const secret of [user.id, email, String(user.accessToken), String(user.refreshToken)]) {
      assert.equal(bytes.includes(secret), false, "the store holds a secret in clear text");
    }
    assert.equal(statSync(file).mode & 0o777, 0o600);

    const arrayBuffer = new ArrayBuffer(64);
    new Uint8Array(arrayBuffer).set(key);
    for (const form of [arrayBuffer, new Uint8Array(key), Buffer.from(key)]) {
      const restarted = storeApp(base, encrypted(form));
      assert.deepEqual(Object.keys(restarted.allUsers), [user.id]);
      assert.equal(restarted.currentUser?.state, UserState.LoggedIn);
      assert.equal(restarted.currentUser?.profile.email, email);
      assert.equal(restarted.currentUser?.refreshToken, user.refreshToken);
    }
  });

  it("refuses a wrong key with DecryptionFailed, naming the file and leaving it as it was", async () => {
    const base = tempDir();
    const key = randomBytes(64);
    const { user } = await logInNew(storeApp(base, encrypted(key)), "enc");
    const file = join(storeDir(base), "users.store");
    const bytes = readFileSync(file);

    const wrong = Buffer.from(key);
    wrong[63] ^= 1;
    assert.throws(
      () => storeApp(base, encrypted(wrong)),
      (err: any) => {
        assert.equal(err.code, ErrorCode.DecryptionFailed);
        assert.equal(err.code, 1022);
        assert.ok(String(err.message).includes(file), err.message);
        assert.ok(err instanceof Error && !(err instanceof TypeError), String(err));
        return true;
      },
    );
    assert.deepEqual(readFileSync(file), bytes);
    assert.deepEqual(readdirSync(storeDir(base)).filter((n) => n.startsWith("users.store")), ["users.store"]);
    assert.deepEqual(Object.keys(storeApp(base, encrypted(key)).allUsers), [user.id]);
  });

  it("requires a 64-byte key", () => {
    const base = tempDir();
    const config = (metadata: unknown) => () =>
      new App({ id: env.emulator.appId, baseUrl: env.emulator.baseUrl, baseFilePath: base, metadata: metadata as Metadata });
    shutdown();
    assert.throws(config({ mode: MetadataMode.Encryption }), (err: any) => err instanceof TypeError && /encryptionKey is required/.test(err.message));
    for (const size of [0, 32, 63, 65, 128]) {
      assert.throws(config(encrypted(Buffer.alloc(size, 1))), TypeError, `a key of ${size} bytes`);
    }
    assert.throws(config({ mode: MetadataMode.Encryption, encryptionKey: "k".repeat(64) }), TypeError);
    assert.throws(config({ mode: "sometimes" }), TypeError);
    assert.equal(existsSync(join(storeDir(base), "users.store")), false);
  });

  it("refuses a plain store opened with a key and an encrypted one opened without, losing nothing", async () => {
    const key = randomBytes(64);

    const plainBase = tempDir();
    const { user: plainUser } = await logInNew(storeApp(plainBase), "mix");
    const plainFile = join(storeDir(plainBase), "users.store");
    const plainBytes = readFileSync(plainFile);
    assert.throws(() => storeApp(plainBase, encrypted(key)), (err: any) => err.code === ErrorCode.DecryptionFailed && err.message.includes(plainFile));
    assert.deepEqual(readFileSync(plainFile), plainBytes);
    assert.deepEqual(Object.keys(storeApp(plainBase).allUsers), [plainUser.id]);

    const encBase = tempDir();
    const { user: encUser } = await logInNew(storeApp(encBase, encrypted(key)), "mix");
    const encFile = join(storeDir(encBase), "users.store");
    const encBytes = readFileSync(encFile);
    for (const metadata of [undefined, { mode: MetadataMode.NoEncryption }]) {
      assert.throws(() => storeApp(encBase, metadata), (err: any) => err.code === ErrorCode.DecryptionFailed && err.message.includes(encFile));
    }
    assert.deepEqual(readFileSync(encFile), encBytes);
    assert.deepEqual(readdirSync(storeDir(encBase)).filter((n) => n.startsWith("users.store")), ["users.store"]);
    assert.deepEqual(Object.keys(storeApp(encBase, encrypted(key)).allUsers), [encUser.id]);
  });
});

describe("corrupt user store", () => {
  it("moves a corrupt file aside (never deletes it), starts with no users and warns once", async () => {
    const base = tempDir();
    mkdirSync(storeDir(base), { recursive: true });
    const file = join(storeDir(base), "users.store");
    const garbage = Buffer.concat([Buffer.from("{\"format\":"), randomBytes(200)]);
    writeFileSync(file, garbage);

    const lines: Array<[LogLevel, string]> = [];
    setLogLevel("warn");
    setLogger((level: LogLevel, message: string) => lines.push([level, message]));
    try {
      const before = Date.now();
      const app = storeApp(base);
      assert.deepEqual(app.allUsers, {});
      assert.equal(app.currentUser, null);
      const aside = corruptFiles(base);
      assert.equal(aside.length, 1);
      const millis = Number(/^users\.store\.corrupt-(\d+)$/.exec(aside[0])?.[1]);
      assert.ok(millis >= before - 1000 && millis <= Date.now() + 1000, aside[0]);
      assert.deepEqual(readFileSync(join(storeDir(base), aside[0])), garbage);
      assert.equal(existsSync(file), false);

      for (let i = 0; i < 100 && lines.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const warnings = lines.filter(([level, message]) => level === "warn" && message.includes(file));
      assert.equal(warnings.length, 1, JSON.stringify(lines));

      // The store works again, and the corrupt copy stays.
      const { user } = await logInNew(app, "corrupt");
      assert.deepEqual(Object.keys(storeApp(base).allUsers), [user.id]);
      assert.deepEqual(corruptFiles(base), aside);
    } finally {
      setLogger(null);
      setLogLevel("info");
    }
  });
});

describe("app cache", () => {
  it("shares users between Apps of one id and base URL, not with another base URL", async () => {
    const one = env.newApp();
    const two = new App({ id: env.emulator.appId, baseUrl: env.emulator.baseUrl, metadata: { mode: MetadataMode.InMemory } });
    const { user } = await logInNew(one, "cache");
    assert.equal(two.currentUser?.id, user.id);
    assert.deepEqual(Object.keys(two.allUsers), [user.id]);
    // A change through one App is seen through the other at once.
    const out = two.currentUser!.logOut();
    assert.equal(user.state, UserState.LoggedOut);
    assert.equal(one.currentUser, null);
    await out;
    const elsewhere = new App({
      id: env.emulator.appId,
      baseUrl: env.emulator.baseUrl.replace("127.0.0.1", "localhost"),
      metadata: { mode: MetadataMode.InMemory },
    });
    assert.deepEqual(elsewhere.allUsers, {});
  });

  it("App.get and App.getApp return one App object per id", () => {
    const cwd = process.cwd();
    const base = tempDir();
    // App.get(id) keeps its users under the working directory.
    process.chdir(base);
    try {
      const id = `get-${process.pid}`;
      const app = App.get(id);
      assert.ok(app instanceof App);
      assert.equal(app.id, id);
      assert.equal(App.get(id), app);
      assert.equal(App.getApp(id), app);
      assert.notEqual(App.get(`${id}-other`), app);
      // Nothing is written before a user logs in.
      assert.ok(!existsSync(join(base, "mongodb-realm")));
    } finally {
      process.chdir(cwd);
    }
  });

  it("two Apps sharing a user share one token refresh", async () => {
    const one = env.newApp();
    const two = new App({ id: env.emulator.appId, baseUrl: env.emulator.baseUrl, metadata: { mode: MetadataMode.InMemory } });
    const { user, email } = await logInNew(one, "refresh");
    const same = two.allUsers[user.id];
    assert.ok(same);
    env.emulator.expireAccessTokens();
    env.emulator.clearRequests();
    const profiles = await Promise.all([user.refreshProfile(), same.refreshProfile(), user.refreshProfile(), same.refreshProfile()]);
    for (const profile of profiles) assert.equal(profile.email, email);
    const refreshes = env.emulator.requests().filter((r) => r.method === "POST" && r.path === "/api/client/v2.0/auth/session");
    assert.equal(refreshes.length, 1);
    assert.equal(user.accessToken, same.accessToken);
  });

  it("an in-memory App falls back to the first logged-in user by id, as allUsers lists them", async () => {
    const app = env.newApp();
    const [low, high] = (await Promise.all([env.emulator.createUser(newEmail("mem"), PASSWORD), env.emulator.createUser(newEmail("mem"), PASSWORD)])).sort((a, b) =>
      a.id < b.id ? -1 : 1,
    );
    // Logged in in the reverse of id order.
    await app.logIn(Credentials.emailPassword(high.email, PASSWORD));
    await app.logIn(Credentials.emailPassword(low.email, PASSWORD));
    const { user: last } = await logInNew(app, "mem");
    assert.deepEqual(Object.keys(app.allUsers).filter((id) => id !== last.id), [low.id, high.id]);
    await last.logOut();
    // realm-core's InMemoryMetadataStorage keeps users in a std::map by id.
    assert.equal(app.currentUser?.id, low.id);
  });
});
