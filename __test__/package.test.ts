// The package as npm users get it: what `npm pack` ships, the platform
// packages in npm/, the exports map, and the packed tarball installed into a
// scratch project and used from ES modules, CommonJS and TypeScript
// (moduleResolution nodenext, node16 and bundler), as realm v12 code would.
//
// The root package carries no binary (the platform packages do, as optional
// dependencies written at publish time), so the scratch project installs the
// tarball next to this platform's npm/<platform> package holding the binary
// built here: the same two packages npm installs from the registry.
import assert from "node:assert/strict";
import { type SpawnSyncOptions, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";

const root = join(__dirname, "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const binaryName: string = pkg.napi.binaryName;
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
  it("npm/ holds one package per napi target, named and constrained as the loader expects", () => {
    const expected = (pkg.napi.targets as string[]).map(abiOfTriple);
    assert.deepEqual(readdirSync(join(root, "npm")).sort(), expected.map((t) => t.abi).sort());
    const loader = readFileSync(join(root, "index.js"), "utf8");
    for (const { abi, os, cpu, libc } of expected) {
      const sub = JSON.parse(readFileSync(join(root, "npm", abi, "package.json"), "utf8"));
      const file = `${binaryName}.${abi}.node`;
      assert.equal(sub.name, `${pkg.name}-${abi}`);
      assert.equal(sub.version, pkg.version, `${abi}: versions move together (npm version runs napi version)`);
      assert.deepEqual(sub.os, [os]);
      assert.deepEqual(sub.cpu, [cpu]);
      assert.deepEqual(sub.libc, libc ? [libc] : undefined);
      assert.equal(sub.main, file);
      assert.deepEqual(sub.files, [file]);
      assert.deepEqual(sub.engines, pkg.engines);
      assert.equal(sub.license, pkg.license);
      assert.ok(loader.includes(`require('${sub.name}')`), `index.js loads ${sub.name}`);
      assert.ok(loader.includes(`'./${file}'`), `index.js loads ./${file}`);
    }
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

  it("npm pack --dry-run lists the loader, types, README, LICENSE and the bin, and nothing else", () => {
    const [report] = JSON.parse(npm(["pack", "--dry-run", "--json"], root));
    const files = report.files.map((f: { path: string }) => f.path).sort();
    assert.deepEqual(files, [
      "LICENSE",
      "README.md",
      "bin/realm-auth-native.js",
      "docs/EMULATOR.md",
      "experimental/base-url.d.ts",
      "experimental/base-url.js",
      "index.d.mts",
      "index.d.ts",
      "index.js",
      "index.mjs",
      "main.js",
      "package.json",
    ]);
    // No binary, sources, build output or tests in the root package.
    assert.ok(!files.some((f: string) => /\.node$|^src\/|^crates\/|^target\/|^__test__\/|^npm\//.test(f)));
  });
});

describe("the packed tarball in a scratch project", () => {
  let dir = "";
  let project = "";
  const abi = platformArchAbi();
  const binary = join(root, `${binaryName}.${abi}.node`);
  const typescript = join(root, "node_modules", "typescript", "bin", "tsc");
  // The loader checks that the platform package's version is the root's.
  const env = { ...process.env, NAPI_RS_ENFORCE_VERSION_CHECK: "1" };

  before(() => {
    assert.ok(existsSync(binary), `build the addon first (npx napi build --platform): ${binary} is missing`);
    dir = mkdtempSync(join(tmpdir(), "realm-auth-native-package-"));
    const [packed] = JSON.parse(npm(["pack", "--json", "--pack-destination", dir], root));
    // This platform's binary package, as CI assembles it with `napi artifacts`.
    const platformDir = join(dir, abi);
    mkdirSync(platformDir);
    copyFileSync(join(root, "npm", abi, "package.json"), join(platformDir, "package.json"));
    try {
      linkSync(binary, join(platformDir, `${binaryName}.${abi}.node`));
    } catch {
      copyFileSync(binary, join(platformDir, `${binaryName}.${abi}.node`));
    }
    project = join(dir, "project");
    mkdirSync(project);
    writeFileSync(join(project, "package.json"), JSON.stringify({ name: "scratch", version: "1.0.0", private: true }));
    npm(["install", "--prefer-offline", "--no-audit", "--no-fund", join(dir, packed.filename), platformDir], project);
    writeFixtures(project, join(root, "node_modules", "@types"));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("installs the root package without a binary of its own", () => {
    const installed = readdirSync(join(project, "node_modules", "realm-auth-native"));
    assert.ok(!installed.some((f) => f.endsWith(".node")), installed.join(", "));
  });

  it("imports from an ES module: default namespace and named exports, against the emulator", () => {
    assert.equal(run(process.execPath, ["esm.mjs"], { cwd: project, env, shell: false }).trim(), "esm ok");
  });

  it("requires from CommonJS", () => {
    assert.equal(run(process.execPath, ["cjs.cjs"], { cwd: project, env, shell: false }).trim(), "cjs ok");
  });

  it("installs the realm-auth-native command", () => {
    const bin = join(project, "node_modules", "realm-auth-native", "bin", "realm-auth-native.js");
    assert.match(run(process.execPath, [bin, "emulator", "--help"], { cwd: project, env, shell: false }), /--app-id <id>/);
    assert.ok(existsSync(join(project, "node_modules", ".bin", isWindows ? "realm-auth-native.cmd" : "realm-auth-native")));
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
      import Realm, { ApiKeyAuth, App, Auth, Credentials, Emulator, ErrorCode, UserState } from "realm-auth-native";
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
