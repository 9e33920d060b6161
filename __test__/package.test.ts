// The packages as npm users get them: what `npm pack` ships (the client with
// no server in it, the server package with its own files), the platform
// packages in npm/, the exports map, and the packed tarballs installed into a
// scratch project and used from ES modules, CommonJS and TypeScript
// (moduleResolution nodenext, node16 and bundler), as realm v12 code would,
// with the server package as the dev dependency that starts the emulator.
//
// Neither package carries a binary (the platform packages do, as optional
// dependencies written at publish time), so the scratch project installs each
// tarball next to this platform's npm/<platform> package holding the binary
// built here: the same packages npm installs from the registry.
import assert from "node:assert/strict";
import { type SpawnSyncOptions, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";

const root = join(__dirname, "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const binaryName: string = pkg.napi.binaryName;
const serverRoot = join(root, "packages", "server");
const serverPkg = JSON.parse(readFileSync(join(serverRoot, "package.json"), "utf8"));
const serverBinaryName: string = serverPkg.napi.binaryName;
// Text only the server has: the listening line, the control token's variable, the error enum.
const SERVER_ONLY = ["App Services emulator listening on", "REALM_AUTH_EMULATOR_CONTROL_TOKEN", "EmulatorErrorCode"];
const isWindows = process.platform === "win32";

/** napi-rs's name for this machine's platform, e.g. `linux-x64-gnu`. */
function platformArchAbi(): string {
  const { platform, arch } = process;
  if (platform === "linux") {
    const header = (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header;
    return `linux-${arch}-${header.glibcVersionRuntime ? "gnu" : "musl"}`;
  }
  if (platform === "win32") return `win32-${arch}-msvc`;
  if (platform === "darwin") return `darwin-${arch}`;
  throw new Error(`no prebuilt binary for ${platform}-${arch}`);
}

/** napi-rs's name for a target triple (the npm/ directory and .node suffix). */
function abiOfTriple(triple: string): { abi: string; os: string; cpu: string; libc?: string } {
  const cpu = triple.startsWith("x86_64") ? "x64" : triple.startsWith("aarch64") ? "arm64" : "?";
  if (triple.endsWith("-apple-darwin")) return { abi: `darwin-${cpu}`, os: "darwin", cpu };
  if (triple.endsWith("-pc-windows-msvc")) return { abi: `win32-${cpu}-msvc`, os: "win32", cpu };
  const libc = triple.endsWith("-linux-musl") ? "musl" : "gnu";
  return { abi: `linux-${cpu}-${libc}`, os: "linux", cpu, libc: libc === "gnu" ? "glibc" : "musl" };
}

/** Runs a command; fails the test with its output if it exits non-zero. */
function run(command: string, args: string[], options: SpawnSyncOptions = {}): string {
  const result = spawnSync(command, args, { encoding: "utf8", shell: isWindows, ...options });
  assert.equal(result.status, 0, `${command} ${args.join(" ")} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return String(result.stdout);
}

/** npm, without the settings an enclosing `npm run` passes down to scripts. */
function npm(args: string[], cwd: string): string {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^npm_(package|lifecycle)_/i.test(name) || /^npm_config_(local_prefix|prefix|global)$/i.test(name)) delete env[name];
  }
  return run("npm", args, { cwd, env });
}

describe("package manifest", () => {
  for (const [dir, manifest] of [
    [root, pkg],
    [serverRoot, serverPkg],
  ]) {
    it(`${manifest.name}: npm/ holds one package per napi target, named and constrained as the loader expects`, () => {
      const expected = (manifest.napi.targets as string[]).map(abiOfTriple);
      assert.deepEqual(readdirSync(join(dir, "npm")).sort(), expected.map((t) => t.abi).sort());
      const loader = readFileSync(join(dir, "index.js"), "utf8");
      for (const { abi, os, cpu, libc } of expected) {
        const sub = JSON.parse(readFileSync(join(dir, "npm", abi, "package.json"), "utf8"));
        const file = `${manifest.napi.binaryName}.${abi}.node`;
        assert.equal(sub.name, `${manifest.name}-${abi}`);
        assert.equal(sub.version, manifest.version, `${abi}: versions move together (npm version runs napi version)`);
        assert.deepEqual(sub.os, [os]);
        assert.deepEqual(sub.cpu, [cpu]);
        assert.deepEqual(sub.libc, libc ? [libc] : undefined);
        assert.equal(sub.main, file);
        assert.deepEqual(sub.files, [file]);
        assert.deepEqual(sub.engines, manifest.engines);
        assert.equal(sub.license, manifest.license);
        assert.ok(loader.includes(`require('${sub.name}')`), `index.js loads ${sub.name}`);
        assert.ok(loader.includes(`'./${file}'`), `index.js loads ./${file}`);
      }
    });
  }

  it("the server is a workspace, a dev dependency of the client, and never a dependency of it", () => {
    assert.deepEqual(pkg.workspaces, ["packages/server"]);
    assert.equal(serverPkg.name, "realm-auth-server");
    assert.equal(pkg.devDependencies["realm-auth-server"], serverPkg.version);
    assert.equal(pkg.dependencies["realm-auth-server"], undefined);
    assert.equal(serverPkg.version, pkg.version, "the two packages are released together");
    assert.deepEqual(serverPkg.bin, { "realm-auth-server": "bin/realm-auth-server.js" });
    assert.equal(serverPkg.dependencies?.["realm-auth-native"], undefined, "the server does not need the client");
  });

  it("has an exports map with types first for import and require, pointing at shipped files", () => {
    const dot = pkg.exports["."];
    assert.deepEqual(Object.keys(dot), ["import", "require", "default"]);
    assert.deepEqual(dot.import, { types: "./index.d.mts", default: "./index.mjs" });
    assert.deepEqual(dot.require, { types: "./index.d.ts", default: "./main.js" });
    assert.equal(pkg.main, "main.js");
    assert.equal(pkg.types, "index.d.ts");
    for (const file of ["main.js", "index.js", "index.d.ts", "index.mjs", "index.d.mts", pkg.bin["realm-auth-native"]]) {
      assert.ok(pkg.files.includes(file), `${file} is in files`);
      assert.ok(existsSync(join(root, file)), `${file} exists`);
    }
    assert.deepEqual(pkg.exports["./experimental/base-url"], {
      types: "./experimental/base-url.d.ts",
      default: "./experimental/base-url.js",
    });
    for (const file of Object.values(pkg.exports["./experimental/base-url"]) as string[]) {
      assert.ok(pkg.files.includes(file.slice(2)), `${file} is in files`);
    }
    assert.equal(pkg.engines.node, ">= 20");
    assert.equal(pkg.optionalDependencies, undefined, "written by `napi prepublish` at publish time only");
  });

  it("index.mjs re-exports every export of the binding, and the binding itself as default", async () => {
    const binding = require(join(root, "main.js"));
    const esm = await import(pathToFileURL(join(root, "index.mjs")).href);
    assert.equal(esm.default, binding);
    // Node 23+ adds a "module.exports" name to every CommonJS module's namespace, and
    // `export *` passes it on, as it would for a direct import of index.js.
    const names = Object.keys(esm).filter((k) => k !== "default" && k !== "module.exports");
    // `__panicAt` is a test hook that only debug builds have (src/testing.rs): not part of the API.
    const exported = Object.keys(binding).filter((k) => k !== "__panicAt");
    assert.deepEqual(names.sort(), exported.sort());
    for (const name of exported) assert.equal(esm[name], binding[name], name);
    assert.equal(esm.Auth.ApiKeyAuth, binding.ApiKeyAuth);
    // realm v12's BSON subset, from bson 4 (a dependency), so ObjectIds work as they did.
    assert.deepEqual(Object.keys(esm.BSON).sort(), ["Binary", "Decimal128", "EJSON", "ObjectID", "ObjectId", "UUID"]);
    const id = new esm.BSON.ObjectId();
    assert.equal(new esm.BSON.ObjectId(id.toHexString()).toHexString(), id.toHexString());
  });

  it("npm pack --dry-run lists the loader, types, README, LICENSE and the bin, and nothing of the server", () => {
    const [report] = JSON.parse(npm(["pack", "--dry-run", "--json"], root));
    assert.equal(report.name, "realm-auth-native");
    const files = report.files.map((f: { path: string }) => f.path).sort();
    assert.deepEqual(files, [
      "LICENSE",
      "README.md",
      "bin/realm-auth-native.js",
      "experimental/base-url.d.ts",
      "experimental/base-url.js",
      "index.d.mts",
      "index.d.ts",
      "index.js",
      "index.mjs",
      "main.js",
      "package.json",
    ]);
    // No binary, sources, build output or tests in the root package; no server or its guide.
    assert.ok(!files.some((f: string) => /\.node$|^src\/|^crates\/|^target\/|^__test__\/|^npm\/|^packages\/|server|emulator/i.test(f)));
    for (const file of ["index.js", "index.d.ts", "bin/realm-auth-native.js"]) {
      const text = readFileSync(join(root, file), "utf8");
      assert.doesNotMatch(text, /\bEmulator\b|EmulatorOptions|realm-auth-server\.|_emulator\//, `${file} has no server API`);
    }
  });

  it("the server package's npm pack --dry-run lists its loader, types, bin, guides, README and LICENSE", () => {
    const [report] = JSON.parse(npm(["pack", "--dry-run", "--json"], serverRoot));
    assert.equal(report.name, "realm-auth-server");
    const files = report.files.map((f: { path: string }) => f.path).sort();
    assert.deepEqual(files, [
      "LICENSE",
      "README.md",
      "bin/realm-auth-server.js",
      "docs/EMULATOR.md",
      "docs/SERVER.md",
      "index.d.ts",
      "index.js",
      "package.json",
    ]);
  });
});

describe("the built binaries", () => {
  const abi = platformArchAbi();

  it("the client's .node holds no server code; the server's does", () => {
    const client = join(root, `${binaryName}.${abi}.node`);
    const server = join(serverRoot, `${serverBinaryName}.${abi}.node`);
    assert.ok(existsSync(client) && existsSync(server), "build both addons first (npm run build:debug && npm run build:server:debug)");
    const clientBytes = readFileSync(client);
    const serverBytes = readFileSync(server);
    for (const text of SERVER_ONLY) {
      // Checked in the server's binary first, so that a string this test looks for cannot go stale.
      assert.ok(serverBytes.includes(text), `the server's .node has '${text}'`);
      assert.ok(!clientBytes.includes(text), `the client's .node has '${text}': server code in the client`);
    }
    assert.equal(require(join(root, "index.js")).Emulator, undefined);
  });
});

describe("the packed tarballs in a scratch project", () => {
  let dir = "";
  let project = "";
  const abi = platformArchAbi();
  const binary = join(root, `${binaryName}.${abi}.node`);
  const serverBinary = join(serverRoot, `${serverBinaryName}.${abi}.node`);
  const typescript = join(root, "node_modules", "typescript", "bin", "tsc");
  // The loader checks that the platform package's version is the root's.
  const env = { ...process.env, NAPI_RS_ENFORCE_VERSION_CHECK: "1" };

  /** Packs the package in `from` and this platform's binary package next to it; their paths. */
  function packWithBinary(from: string, name: string, file: string): string[] {
    assert.ok(existsSync(file), `build the addons first (npm run build:debug && npm run build:server:debug): ${file} is missing`);
    const [packed] = JSON.parse(npm(["pack", "--json", "--pack-destination", dir], from));
    // This platform's binary package, as CI assembles it with `napi artifacts`.
    const platformDir = join(dir, `${name}-${abi}`);
    mkdirSync(platformDir);
    copyFileSync(join(from, "npm", abi, "package.json"), join(platformDir, "package.json"));
    try {
      linkSync(file, join(platformDir, `${name}.${abi}.node`));
    } catch {
      copyFileSync(file, join(platformDir, `${name}.${abi}.node`));
    }
    return [join(dir, packed.filename), platformDir];
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "realm-auth-native-package-"));
    const client = packWithBinary(root, binaryName, binary);
    const server = packWithBinary(serverRoot, serverBinaryName, serverBinary);
    project = join(dir, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "scratch", version: "1.0.0", private: true }));
    npm(["install", "--prefer-offline", "--no-audit", "--no-fund", ...client], project);
    // The server as a team installs it: a dev dependency.
    npm(["install", "--save-dev", "--prefer-offline", "--no-audit", "--no-fund", ...server], project);
    writeFixtures(project, join(root, "node_modules", "@types"));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("installs both packages without a binary of their own", () => {
    for (const name of ["realm-auth-native", "realm-auth-server"]) {
      const installed = readdirSync(join(project, "node_modules", name));
      assert.ok(!installed.some((f) => f.endsWith(".node")), installed.join(", "));
    }
  });

  it("imports from an ES module: default namespace and named exports, against the emulator", () => {
    assert.equal(run(process.execPath, ["esm.mjs"], { cwd: project, env, shell: false }).trim(), "esm ok");
  });

  it("requires from CommonJS", () => {
    assert.equal(run(process.execPath, ["cjs.cjs"], { cwd: project, env, shell: false }).trim(), "cjs ok");
  });

  it("installs the realm-auth-native command", () => {
    const bin = join(project, "node_modules", "realm-auth-native", "bin", "realm-auth-native.js");
    assert.match(run(process.execPath, [bin, "keys", "--help"], { cwd: project, env, shell: false }), /--app-id <id>/);
    assert.ok(existsSync(join(project, "node_modules", ".bin", isWindows ? "realm-auth-native.cmd" : "realm-auth-native")));
  });

  it("installs the realm-auth-server command, which serves from the installed package", async () => {
    const bin = join(project, "node_modules", "realm-auth-server", "bin", "realm-auth-server.js");
    assert.match(run(process.execPath, [bin, "emulator", "--help"], { cwd: project, env, shell: false }), /--app-id <id>/);
    assert.ok(existsSync(join(project, "node_modules", ".bin", isWindows ? "realm-auth-server.cmd" : "realm-auth-server")));
    const child = spawn(process.execPath, [bin, "emulator", "--json"], { cwd: project, env, stdio: ["ignore", "pipe", "pipe"] });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), "line")) as [string];
      const { baseUrl } = JSON.parse(line) as { baseUrl: string };
      assert.equal((await fetch(`${baseUrl}/api/client/v2.0/app/emulator-app/location`)).status, 200);
    } finally {
      child.kill();
    }
  });

  it("type-checks and runs from TypeScript with moduleResolution nodenext (.mts and .cts)", () => {
    run(process.execPath, [typescript, "-p", "tsconfig.nodenext.json"], { cwd: project, shell: false });
    assert.equal(run(process.execPath, [join("out", "consumer.mjs")], { cwd: project, env, shell: false }).trim(), "ts esm ok");
    assert.equal(run(process.execPath, [join("out", "consumer.cjs")], { cwd: project, env, shell: false }).trim(), "ts cjs ok");
  });

  it("type-checks with moduleResolution node16", () => {
    run(process.execPath, [typescript, "-p", "tsconfig.node16.json"], { cwd: project, shell: false });
  });

  it("type-checks with moduleResolution bundler", () => {
    run(process.execPath, [typescript, "-p", "tsconfig.bundler.json"], { cwd: project, shell: false });
  });
});

/** The scratch project's sources: realm v12-style code, in every module flavour. */
function writeFixtures(project: string, typeRoot: string): void {
  const files: Record<string, string> = {
    "esm.mjs": `
      import assert from "node:assert/strict";
      import { createRequire } from "node:module";
      import Realm, { ApiKeyAuth, App, Auth, Credentials, ErrorCode, UserState } from "realm-auth-native";
      import { Emulator } from "realm-auth-server";
      import "realm-auth-native/experimental/base-url";
      import * as namespace from "realm-auth-native";

      assert.equal(Realm, createRequire(import.meta.url)("realm-auth-native"), "one module instance for import and require");
      assert.equal(namespace.default, Realm);
      assert.equal(Realm.App, App);
      assert.equal(Realm.Auth.ApiKeyAuth, ApiKeyAuth);
      assert.equal(Auth.ApiKeyAuth, ApiKeyAuth);
      assert.equal(ErrorCode.APIKeyNotFound, 4334);
      const emulator = await Emulator.start();
      try {
        const app = new Realm.App({ id: emulator.appId, baseUrl: emulator.baseUrl });
        // realm v12's experimental base URL API: read, refuse assignment, update.
        assert.equal(app.baseUrl, emulator.baseUrl);
        assert.throws(() => { app.baseUrl = "http://127.0.0.1:1"; }, /Cannot assign the base URL/);
        await app.updateBaseUrl(emulator.baseUrl.replace("127.0.0.1", "localhost"));
        assert.equal(app.baseUrl, emulator.baseUrl.replace("127.0.0.1", "localhost"));
        await app.emailPasswordAuth.registerUser({ email: "esm@example.com", password: "pw-123456" });
        const user = await app.logIn(Credentials.emailPassword("esm@example.com", "pw-123456"));
        assert.equal(user.state, UserState.LoggedIn);
        assert.ok(user.apiKeys instanceof Realm.Auth.ApiKeyAuth);
        const key = await user.apiKeys.create("from-esm");
        assert.deepEqual(await user.apiKeys.fetchAll(), [{ _id: key._id, name: "from-esm", disabled: false }]);
        assert.equal((await app.logIn(Realm.Credentials.apiKey(key.key))).id, user.id);
      } finally {
        await emulator.stop();
      }
      console.log("esm ok");
    `,
    "cjs.cjs": `
      const assert = require("node:assert/strict");
      const Realm = require("realm-auth-native");
      const { App, Auth, ApiKeyAuth, Credentials } = require("realm-auth-native");
      assert.equal(Realm.App, App);
      assert.equal(Auth.ApiKeyAuth, ApiKeyAuth);
      assert.equal(typeof Credentials.apiKey, "function");
      assert.equal(require("realm-auth-native/package.json").name, "realm-auth-native");
      assert.equal(new App("cjs-app").id, "cjs-app");
      console.log("cjs ok");
    `,
    // The same realm v12-style code, type-checked under every resolution mode.
    "consumer.mts": typedConsumer("ts esm ok"),
    "consumer.bundler.ts": typedConsumer("ts bundler ok"),
    "consumer.cts": `
      import Realm = require("realm-auth-native");
      import DefaultRealm from "realm-auth-native";
      import { App, Auth } from "realm-auth-native";

      const app: Realm.App = new Realm.App({ id: "scratch-app" });
      const app2: DefaultRealm.App = new DefaultRealm.App("scratch-app");
      const app3: App = new App(app.id);
      const ApiKeyAuthClass: typeof Realm.Auth.ApiKeyAuth = Auth.ApiKeyAuth;
      export async function fetchAll(user: Realm.User): Promise<Realm.Auth.ApiKey[]> {
        return user.apiKeys.fetchAll();
      }
      export function typesAreReal(): void {
        // @ts-expect-error: an App id is a string
        new Realm.App(42);
      }
      if (app2.id === app3.id && ApiKeyAuthClass === Realm.ApiKeyAuth) console.log("ts cjs ok");
    `,
  };
  const compilerOptions = {
    target: "es2022",
    strict: true,
    esModuleInterop: true,
    skipLibCheck: false,
    typeRoots: [typeRoot],
    types: ["node"],
  };
  const configs: Record<string, object> = {
    "tsconfig.nodenext.json": {
      compilerOptions: { ...compilerOptions, module: "nodenext", moduleResolution: "nodenext", outDir: "out" },
      files: ["consumer.mts", "consumer.cts"],
    },
    "tsconfig.node16.json": {
      compilerOptions: { ...compilerOptions, module: "node16", moduleResolution: "node16", noEmit: true },
      files: ["consumer.mts", "consumer.cts"],
    },
    "tsconfig.bundler.json": {
      compilerOptions: { ...compilerOptions, module: "esnext", moduleResolution: "bundler", noEmit: true },
      files: ["consumer.bundler.ts"],
    },
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(project, name), text);
  for (const [name, config] of Object.entries(configs)) writeFileSync(join(project, name), JSON.stringify(config, null, 2));
}

/** ESM TypeScript that uses the package the way realm v12 code does. */
function typedConsumer(done: string): string {
  return `
    import Realm, { App, Auth, Credentials, ErrorCode, type ApiKey, type SecretApiKey, type User } from "realm-auth-native";
    import "realm-auth-native/experimental/base-url";
    import * as Named from "realm-auth-native";

    const app: Realm.App = new Realm.App({ id: "scratch-app", baseUrl: "http://127.0.0.1:1" });
    const app2: App = new App("scratch-app");
    const AppClass: typeof Named.App = Realm.App;
    const credentials: Realm.Credentials = Realm.Credentials.apiKey("key");
    const credentials2: Credentials = Credentials.emailPassword("ada@example.com", "pw");
    const ApiKeyAuthClass: typeof Realm.Auth.ApiKeyAuth = Auth.ApiKeyAuth;
    const key: Realm.Auth.ApiKey & ApiKey = { _id: "0123456789abcdef01234567", name: "k", disabled: false };
    const code: number = Realm.ErrorCode.APIKeyNotFound + ErrorCode.InvalidPassword;
    export async function createKey(user: Realm.User & User): Promise<Realm.Auth.SecretApiKey & SecretApiKey> {
      return user.apiKeys.create("name");
    }
    export async function moveTo(url: string | null): Promise<string> {
      await app.updateBaseUrl(url);
      return app.baseUrl;
    }
    export function typesAreReal(): void {
      // @ts-expect-error: an App id is a string
      new Realm.App(42);
      // @ts-expect-error: no such export
      Realm.NotAnExport;
    }
    if (app.id === app2.id && AppClass === App && credentials && credentials2 && ApiKeyAuthClass && key && code) {
      console.log(${JSON.stringify(done)});
    }
  `;
}
