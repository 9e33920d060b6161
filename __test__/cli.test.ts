// The package's command line: `realm-auth-native emulator`.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { App, Credentials } from "realm-auth-native";

const BIN = join(__dirname, "..", "bin", "realm-auth-native.js");

describe("realm-auth-native emulator", () => {
  it("prints one line with the picked port, serves, and stops cleanly on SIGTERM", async () => {
    const child = spawn(process.execPath, [BIN, "emulator", "--port", "0", "--app-id", "cli-app"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
    const match = /^App Services emulator listening on (http:\/\/127\.0\.0\.1:(\d+)) \(app id cli-app\)$/.exec(line);
    assert.ok(match, line);
    assert.notEqual(match[2], "0");

    const app = new App({ id: "cli-app", baseUrl: match[1] });
    const user = await app.logIn(Credentials.anonymous());
    assert.equal(user.isLoggedIn, true);

    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
  });

  it("refuses unknown arguments with exit code 2 and prints help on --help", () => {
    const bad = spawnSync(process.execPath, [BIN, "emulator", "--bogus"], { encoding: "utf8" });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown argument '--bogus'/);
    const help = spawnSync(process.execPath, [BIN, "emulator", "--help"], { encoding: "utf8" });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--app-id <id>/);
    const unknown = spawnSync(process.execPath, [BIN, "nope"], { encoding: "utf8" });
    assert.equal(unknown.status, 2);
  });
});
