// Secret sentinels: run the error paths with recognisable secrets and check
// that none appears in any message, stack, inspect output, JSON or log line.
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { after, before, describe, it } from "node:test";
import { App, Credentials, type User } from "realm-auth-native";

import { rejection, useEmulator } from "./helpers";

const env = useEmulator();
const tag = Math.random().toString(36).slice(2, 10);
const PASSWORD = `SENTINEL-PW-${tag}`;
const FAKE_KEY = `SENTINEL-KEY-${tag}`;
const FAKE_JWT = `SENTINEL.JWT.${tag}`;

/** Everything that was written to stdout/stderr while the tests ran. */
const output: string[] = [];
const writes = { out: process.stdout.write, err: process.stderr.write };
before(() => {
  const capture = (original: typeof process.stdout.write) =>
    function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      output.push(String(chunk));
      return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof process.stdout.write;
  process.stdout.write = capture(writes.out);
  process.stderr.write = capture(writes.err);
});
after(() => {
  process.stdout.write = writes.out;
  process.stderr.write = writes.err;
});

/** Every way an object can be shown: inspect, JSON, own properties, causes. */
function renderings(value: unknown): string[] {
  const out = [inspect(value, { depth: 10, showHidden: true }), String(value)];
  try {
    out.push(JSON.stringify(value));
  } catch {}
  let error = value as { message?: unknown; stack?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; error && typeof error === "object" && depth < 8; depth++) {
    out.push(String(error.message), String(error.stack));
    out.push(JSON.stringify(error, Object.getOwnPropertyNames(error)));
    error = error.cause as typeof error;
  }
  return out;
}

function assertClean(secrets: string[], ...values: unknown[]): void {
  for (const value of values) {
    for (const text of renderings(value)) {
      for (const secret of secrets) assert.ok(!text.includes(secret), `a secret leaked into: ${text.slice(0, 300)}`);
    }
  }
}

describe("secrets", () => {
  it("never show up in errors, objects, the request log or output", async () => {
    const app = env.newApp({ retries: 0 });
    const email = `secret-${tag}@example.com`;
    await app.emailPasswordAuth.registerUser({ email, password: PASSWORD });
    const user: User = await app.logIn(Credentials.emailPassword(email, PASSWORD));
    const key = await user.apiKeys.create("sentinel");
    const secrets = [PASSWORD, FAKE_KEY, FAKE_JWT, key.key, String(user.accessToken), String(user.refreshToken)];
    const failures: unknown[] = [];

    failures.push(await rejection(app.logIn(Credentials.emailPassword(email, `${PASSWORD}-wrong`))));
    failures.push(await rejection(app.logIn(Credentials.apiKey(FAKE_KEY))));
    failures.push(await rejection(app.logIn(Credentials.jwt(FAKE_JWT))));
    failures.push(await rejection(app.emailPasswordAuth.registerUser({ email, password: PASSWORD })));
    failures.push(await rejection(user.apiKeys.create("sentinel")));
    failures.push(await rejection(user.apiKeys.fetch(FAKE_KEY)));
    for (const action of ["drop", "reset"] as const) {
      env.emulator.injectFault({ path: "auth/api_keys", action: { type: action } });
      failures.push(await rejection(user.apiKeys.fetchAll()));
    }
    env.emulator.injectFault({ method: "POST", path: "auth/api_keys", action: { type: "truncate", status: 201, body: JSON.stringify({ ...key, key: key.key }), bytes: 20 } });
    failures.push(await rejection(user.apiKeys.create("lost")));
    env.emulator.injectFault({ path: "auth/api_keys", action: { type: "respond", status: 500, headers: { "content-type": "text/plain" }, body: "oops" } });
    failures.push(await rejection(user.apiKeys.fetchAll()));
    failures.push(await rejection(user.apiKeys.fetchAll({ timeout: 1, signal: AbortSignal.abort() })));
    // A base URL of plain http:// to another host warns (the App is only
    // constructed: no traffic leaves this machine).
    const warnings: Error[] = [];
    process.on("warning", (w) => warnings.push(w));
    new App({ id: "x", baseUrl: "http://app-services.example:9" });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings.filter((w) => w.name === "InsecureConnectionWarning").length, 1);
    new App({ id: "y", baseUrl: "http://app-services.example:9" });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(warnings.filter((w) => w.name === "InsecureConnectionWarning").length, 1, "warned once");
    assertClean(secrets, ...warnings);

    assert.ok(failures.every((f) => f instanceof Error));
    assertClean(secrets, ...failures);
    assertClean(secrets, user, app, app.allUsers, Credentials.emailPassword(email, PASSWORD), Credentials.apiKey(FAKE_KEY), Credentials.jwt(FAKE_JWT));
    assertClean(secrets, user.toJSON(), user.apiKeys, await user.apiKeys.fetchAll());
    assertClean(secrets, env.emulator.requests());

    env.emulator.revokeSessions(user.id);
    failures.push(await rejection(user.apiKeys.fetchAll()));
    assertClean(secrets, failures.at(-1));
    await new Promise((resolve) => setImmediate(resolve));
    assertClean(secrets, output.join(""));
  });
});
