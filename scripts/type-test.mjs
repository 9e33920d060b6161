#!/usr/bin/env node
// Type test against realm v12's own declarations: compiles code written for
// `realm@12.15.0` against realm's published .d.ts files and against ours, and
// our types next to realm's (assignability both ways), with the repo's
// TypeScript. Exits non-zero on any type error outside a pending region.
//
//   node scripts/type-test.mjs             # fetch (first run), compile, report
//   node scripts/type-test.mjs --verbose   # also print the errors of pending regions
//   node scripts/type-test.mjs --strict    # a pending region that compiles is an error
//   node scripts/type-test.mjs --refresh   # fetch realm's declarations again
//   node scripts/type-test.mjs --ours DIR  # check the package in DIR (e.g. an unpacked
//                                          # npm tarball) instead of this checkout
//
// realm's declarations come from the npm registry only: `npm pack realm@12.15.0`
// (plus `bson` and `@realm/fetch`, which they import) downloads the tarballs
// without installing anything, so no install script runs. Each tarball's
// sha512 is checked against the one pinned below, then only its declaration
// files are extracted (realm's tarball is ~190 MB with its native builds; the
// declarations are ~1 MB) into node_modules/.cache/realm-v12-types/, which is
// reused until the pins change. REALM_V12_TYPES_CACHE=<dir> moves that folder.
//
// Each program below compiles copies of __test__/types/ files in a scratch
// folder whose node_modules/ holds the module named `realm`: realm's real
// package in the "realm" programs, a link to this repository in the "ours"
// programs, exactly as an app that swaps the dependency for
// `"realm": "npm:realm-auth-native"` resolves it (package.json "exports",
// `import` → index.d.mts, `require` → index.d.ts). Every program runs twice,
// with and without `exactOptionalPropertyTypes`. Files:
//
//   v12-code.mts             v12 code (`import Realm from "realm"`): compiles
//                            against realm and ours; also compiled as .cts
//   realm-v12-official.mts   ours next to realm's types: must compile
//   realm-v12.ts             what realm's declarations cannot say (also in
//                            `tsc -p tsconfig.json`)
//
// A known mismatch goes in a `<name>.pending.mts` file beside its
// counterpart, added to FILES with "pending" (v12 code: `{ realm: "pass",
// ours: "pending", cts: true }`; comparisons: `{ realm: "pending" }`); there are
// none today. A pending file may only have errors inside `// #region pending <id>: <title>`
// … `// #endregion` blocks. Each block is reported as failing (expected) or as
// passing (its fix landed: move the block into the non-pending file so that it
// cannot regress; with --strict, a passing pending block fails the run).
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  copyFileSync,
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { createGunzip } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const typesDir = join(root, "__test__", "types");
const cacheDir = resolve(process.env.REALM_V12_TYPES_CACHE ?? join(root, "node_modules", ".cache", "realm-v12-types"));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

/**
 * The registry packages whose declarations are compiled, pinned by version and
 * by the sha512 the registry published for the tarball. `keep` selects the
 * tarball entries extracted (paths inside the package); `types` must be among
 * them.
 */
const PACKAGES = [
  {
    spec: "realm@12.15.0",
    name: "realm",
    integrity: "sha512-YTrMJ4NvY2rNSS56y6GMwfoOa7Z1CU6hU+3n1oh89noI2ETMzktmiEgddj4Tsm/jodpcxC8GwIMbWuED0mY05A==",
    keep: (path) => path === "package.json" || path === "LICENSE" || (path.startsWith("dist/public-types/") && path.endsWith(".d.ts")),
    types: "dist/public-types/index.d.ts",
  },
  {
    // realm's dependency `bson: ^4.7.2` (4.7.2 is the last 4.x).
    spec: "bson@4.7.2",
    name: "bson",
    integrity: "sha512-Ry9wCtIZ5kGqkJoi6aD8KjxFZEx78guTQDnpXWiNthsxzrxAK/i8E6pCHAIZTbaEFWcOCvbecMukfK7XUvyLpQ==",
    keep: (path) => path === "package.json" || path === "LICENSE.md" || path === "bson.d.ts",
    types: "bson.d.ts",
  },
  {
    // realm's dependency `@realm/fetch: ^0.1.1` (the only 0.1.x).
    spec: "@realm/fetch@0.1.1",
    name: "@realm/fetch",
    integrity: "sha512-hkTprw79RXGv54Je0DrjpQPLaz4QID2dO3FmthAQQWAkqwyrqMzrCGzJzLlmTKWZFsgLrN8KQyNewod27P+nJg==",
    keep: (path) => path === "package.json" || (path.startsWith("dist/types/") && path.endsWith(".d.ts")),
    types: "dist/types/types.d.ts",
  },
];
/** Bumped when the extraction changes, so that old caches are refetched. */
const CACHE_FORMAT = 1;

/**
 * The files compiled, by program. "pass": must compile without error.
 * "pending": errors allowed inside pending regions only.
 */
const FILES = {
  "v12-code.mts": { realm: "pass", ours: "pass", cts: true },
  "realm-v12-official.mts": { realm: "pass" },
  "realm-v12.ts": { ours: "pass" },
};
/** Imported by the files above, never compiled on their own. */
const SUPPORT_FILES = ["type-helpers.mts"];

/**
 * Errors in realm's own declarations, pinned (file, line, code): realm's
 * declarations are compiled without `skipLibCheck` (which would also skip
 * ours), so a defect of theirs must be listed here to be tolerated. Any other
 * error in their files fails the run (an unresolved import would show there).
 */
const REALM_DEFECTS = [
  {
    file: "realm/dist/public-types/OrderedCollection.d.ts",
    line: 340,
    code: "TS2416",
    why: "`[Symbol.unscopables]` does not fit `readonly T[]`'s under exactOptionalPropertyTypes",
  },
];

const args = new Set();
let oursDir = root;
for (let i = 2; i < process.argv.length; i++) {
  const arg = process.argv[i];
  if (arg === "-h" || arg === "--help") {
    console.log("usage: node scripts/type-test.mjs [--verbose] [--strict] [--refresh] [--ours <package dir>]");
    process.exit(0);
  } else if (arg === "--ours" && process.argv[i + 1]) {
    oursDir = resolve(process.argv[++i]);
  } else if (["--verbose", "--strict", "--refresh"].includes(arg)) {
    args.add(arg);
  } else {
    console.error(`type-test: unknown argument '${arg}'`);
    process.exit(2);
  }
}
const verbose = args.has("--verbose");
const strict = args.has("--strict");

const shown = (path) => (path.startsWith(root + sep) ? relative(root, path) : path);

// ---------------------------------------------------------------------------
// realm's declarations: fetched once from the registry, then cached.

const stampOf = () =>
  JSON.stringify({ format: CACHE_FORMAT, packages: PACKAGES.map((p) => [p.spec, p.integrity]) });

/** The folder holding node_modules/{realm,bson,@realm/fetch}, fetched if needed. */
async function realmPackages() {
  const target = join(cacheDir, "packages");
  const stampFile = join(target, "stamp.json");
  if (!args.has("--refresh") && existsSync(stampFile) && readFileSync(stampFile, "utf8") === stampOf()) {
    console.log(`type-test: realm's declarations: cached in ${shown(target)}`);
    return target;
  }
  const started = Date.now();
  mkdirSync(cacheDir, { recursive: true });
  const staging = join(cacheDir, `.staging-${process.pid}-${randomBytes(4).toString("hex")}`);
  const downloads = join(staging, "tarballs");
  mkdirSync(downloads, { recursive: true });
  try {
    for (const pkg of PACKAGES) {
      console.log(`type-test: fetching ${pkg.spec} from the npm registry (npm pack, no install script)`);
      const tarball = npmPack(pkg.spec, downloads);
      const actual = `sha512-${await hashFile(tarball)}`;
      if (actual !== pkg.integrity) {
        throw new Error(`${pkg.spec}: the tarball's sha512 is ${actual}, not the pinned ${pkg.integrity}`);
      }
      const dest = join(staging, "node_modules", ...pkg.name.split("/"));
      const count = await extractTgz(tarball, dest, pkg.keep);
      rmSync(tarball, { force: true });
      if (!existsSync(join(dest, pkg.types))) {
        throw new Error(`${pkg.spec}: ${pkg.types} is not in the tarball`);
      }
      const declared = JSON.parse(readFileSync(join(dest, "package.json"), "utf8")).types;
      if (declared && resolve(dest, declared) !== resolve(dest, pkg.types)) {
        throw new Error(`${pkg.spec}: package.json "types" is ${declared}, not ${pkg.types}`);
      }
      console.log(`type-test:   ${count} files kept`);
    }
    rmSync(downloads, { recursive: true, force: true });
    writeFileSync(join(staging, "stamp.json"), stampOf());
    rmSync(target, { recursive: true, force: true });
    try {
      renameSync(staging, target);
    } catch (err) {
      // Another run finished first: use its copy.
      if (!existsSync(stampFile)) throw err;
      rmSync(staging, { recursive: true, force: true });
    }
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  }
  console.log(`type-test: realm's declarations cached in ${shown(target)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  return target;
}

/** `npm pack <spec>` into `dir`; returns the tarball's path. */
function npmPack(spec, dir) {
  const windows = process.platform === "win32";
  const quote = (arg) => (windows && /[\s"]/.test(arg) ? `"${arg.replace(/"/g, '\\"')}"` : arg);
  const result = spawnSync(
    npm,
    ["pack", spec, "--pack-destination", dir, "--json", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"].map(quote),
    { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], shell: windows, maxBuffer: 64 << 20 },
  );
  if (result.status !== 0) {
    throw new Error(`npm pack ${spec} failed (exit ${result.status ?? result.signal}); is the npm registry reachable?`);
  }
  const [info] = JSON.parse(result.stdout);
  const tarball = join(dir, info.filename);
  if (!existsSync(tarball)) throw new Error(`npm pack ${spec}: ${info.filename} was not written`);
  return tarball;
}

function hashFile(path) {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash("sha512");
    createReadStream(path)
      .on("error", reject)
      .on("data", (chunk) => hash.update(chunk))
      .on("end", () => resolvePromise(hash.digest("base64")));
  });
}

/** Reads a stream by exact byte counts. */
class ByteReader {
  constructor(stream) {
    this.iterator = stream[Symbol.asyncIterator]();
    this.chunk = Buffer.alloc(0);
    this.pos = 0;
  }
  async #next() {
    const { value, done } = await this.iterator.next();
    if (done) return false;
    this.chunk = value;
    this.pos = 0;
    return true;
  }
  /** The next `n` bytes, or null at the end of the stream before any byte. */
  async read(n, keep = true) {
    const parts = [];
    let missing = n;
    while (missing > 0) {
      if (this.pos >= this.chunk.length && !(await this.#next())) {
        if (missing === n) return null;
        throw new Error("the tarball ends in the middle of an entry");
      }
      const take = Math.min(missing, this.chunk.length - this.pos);
      if (keep) parts.push(this.chunk.subarray(this.pos, this.pos + take));
      this.pos += take;
      missing -= take;
    }
    return keep ? Buffer.concat(parts) : Buffer.alloc(0);
  }
}

/** A NUL-terminated field of a tar header. */
function field(header, start, length) {
  const raw = header.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString("utf8");
}

/**
 * Extracts the regular files of a .tgz for which `keep(path)` holds (path
 * inside the package, i.e. without npm's `package/` folder) into `dest`.
 * Handles ustar prefixes, pax `path` records and GNU long names. Returns the
 * number of files written.
 */
async function extractTgz(tarball, dest, keep) {
  const reader = new ByteReader(createReadStream(tarball).pipe(createGunzip()));
  let count = 0;
  let longName = null;
  for (;;) {
    const header = await reader.read(512);
    if (header === null || header.every((b) => b === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
    if (sum !== parseInt(field(header, 148, 8).trim(), 8)) throw new Error(`${tarball}: corrupt tar header`);
    const type = String.fromCharCode(header[156] || 48);
    const size = parseInt(field(header, 124, 12).trim() || "0", 8);
    const padded = Math.ceil(size / 512) * 512;
    if (type === "x" || type === "L") {
      const data = (await reader.read(padded)).subarray(0, size);
      if (type === "L") longName = data.toString("utf8").replace(/\0.*$/s, "");
      else {
        const match = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString("utf8"));
        if (match) longName = match[1];
      }
      continue;
    }
    const prefix = field(header, 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    longName = null;
    const inPackage = name.replace(/^[^/]*\//, ""); // npm's `package/` (or another) top folder
    const wanted =
      (type === "0" || type === "7") && !inPackage.split("/").some((part) => part === ".." || part === "") && keep(inPackage);
    const data = await reader.read(padded, wanted);
    if (!wanted) continue;
    const out = join(dest, ...inPackage.split("/"));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, data.subarray(0, size));
    count++;
  }
  reader.iterator.return?.();
  return count;
}

// ---------------------------------------------------------------------------
// Programs.

/** Copies the test files into `dir`, whose node_modules/ gets `links`. */
function prepareDir(dir, links, programFiles) {
  // The links point at this repository: remove them as links, never through them.
  for (const sub of ["node_modules", join("node_modules", "@realm")]) {
    const folder = join(dir, sub);
    if (!existsSync(folder)) continue;
    for (const entry of readdirSync(folder)) {
      const path = join(folder, entry);
      if (lstatSync(path).isSymbolicLink()) unlinkSync(path);
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "node_modules", "@realm"), { recursive: true });
  for (const [name, target] of Object.entries(links)) {
    symlinkSync(target, join(dir, "node_modules", ...name.split("/")), process.platform === "win32" ? "junction" : "dir");
  }
  // A package scope of its own: without it, the copies would be inside this
  // repository's (package.json two levels up) and `realm-auth-native` would
  // resolve to it by self-reference, whatever node_modules/ holds.
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "realm-v12-type-test", private: true }, null, 2));
  const roots = [];
  for (const file of [...programFiles, ...SUPPORT_FILES]) {
    copyFileSync(join(typesDir, file), join(dir, file));
  }
  for (const file of programFiles) {
    roots.push({ copy: join(dir, file), original: join(typesDir, file) });
    if (FILES[file].cts) {
      const cts = file.replace(/\.mts$/, ".cts");
      copyFileSync(join(typesDir, file), join(dir, cts));
      roots.push({ copy: join(dir, cts), original: join(typesDir, file), note: "compiled as .cts" });
    }
  }
  return roots;
}

/** Runs the repo's tsc over `roots` in `dir`; returns the diagnostics by file. */
function compile(dir, roots, exact) {
  const rootConfig = join(root, "tsconfig.json");
  const config = {
    extends: rootConfig,
    compilerOptions: {
      noEmit: true,
      skipLibCheck: false,
      strict: true,
      exactOptionalPropertyTypes: exact,
      typeRoots: [join(root, "node_modules", "@types")],
    },
    files: roots.map((r) => r.copy),
    include: [],
  };
  const configFile = join(dir, `tsconfig.${exact ? "exact" : "default"}.json`);
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
  if (!existsSync(tsc)) throw new Error(`${shown(tsc)} is missing: run npm ci first`);
  const result = spawnSync(process.execPath, [tsc, "-p", configFile, "--pretty", "false"], {
    cwd: dir,
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  if (result.error) throw result.error;
  const output = `${result.stdout}${result.stderr}`;
  const diagnostics = [];
  let last = null;
  for (const line of output.split(/\r?\n/)) {
    const match = /^(.+?)\((\d+),(\d+)\): error (TS\d+): (.*)$/.exec(line);
    if (match) {
      last = { file: resolve(dir, match[1]), line: Number(match[2]), col: Number(match[3]), code: match[4], text: match[5] };
      diagnostics.push(last);
    } else if (line.startsWith("  ") && last) {
      last.text += `\n${line}`;
    } else if (line.trim() && !/^Found \d+ errors?\b/.test(line)) {
      last = { file: null, line: 0, col: 0, code: "", text: line };
      diagnostics.push(last);
    }
  }
  if (result.status !== 0 && diagnostics.length === 0) {
    diagnostics.push({ file: null, line: 0, col: 0, code: "", text: `tsc exited with ${result.status}` });
  }
  return diagnostics;
}

/** `// #region pending <id>: <title>` … `// #endregion` blocks of a file. */
function pendingRegions(file) {
  const regions = [];
  let open = null;
  readFileSync(file, "utf8")
    .split(/\r?\n/)
    .forEach((text, i) => {
      const start = /^\s*\/\/\s*#region pending\s+([\w.-]+)\s*:?\s*(.*)$/.exec(text);
      if (start) {
        if (open) throw new Error(`${shown(file)}:${i + 1}: region ${start[1]} starts inside ${open.id}`);
        open = { id: start[1], title: start[2].trim(), file, start: i + 1, end: null };
      } else if (/^\s*\/\/\s*#endregion/.test(text) && open) {
        open.end = i + 1;
        regions.push(open);
        open = null;
      }
    });
  if (open) throw new Error(`${shown(file)}: region ${open.id} is not closed`);
  return regions;
}

const format = (d, original, note) =>
  d.file
    ? `${shown(original)}(${d.line},${d.col})${note ? ` [${note}]` : ""}: error ${d.code}: ${d.text}`
    : d.text;

async function main() {
  const started = Date.now();
  // Real paths: tsc reports files by their real path.
  const packages = realpathSync(await realmPackages());
  const realmModules = join(packages, "node_modules");
  const programs = [
    {
      name: "realm",
      what: "`realm` is realm@12.15.0's declarations",
      links: {
        realm: join(realmModules, "realm"),
        bson: join(realmModules, "bson"),
        "@realm/fetch": join(realmModules, "@realm", "fetch"),
        "realm-auth-native": oursDir,
      },
    },
    {
      name: "ours",
      what: `\`realm\` is ${oursDir === root ? "this package" : shown(oursDir)}`,
      links: { realm: oursDir, "realm-auth-native": oursDir },
    },
  ];
  if (!existsSync(join(oursDir, "package.json"))) throw new Error(`no package.json in ${oursDir}`);

  const failures = [];
  /** Pending regions by id (one id per fix, possibly in several files). */
  const regionResults = new Map();
  /** realm's own declaration errors that were tolerated (REALM_DEFECTS). */
  const tolerated = new Set();
  for (const file of Object.keys(FILES)) {
    if (!existsSync(join(typesDir, file))) failures.push(`missing test file ${shown(join(typesDir, file))}`);
  }
  const known = new Set([...Object.keys(FILES), ...SUPPORT_FILES]);
  for (const file of readdirSync(typesDir)) {
    if (/\.[cm]?ts$/.test(file) && !known.has(file)) {
      failures.push(`${shown(join(typesDir, file))} is not listed in scripts/type-test.mjs (FILES)`);
    }
  }
  if (failures.length) return finish(failures, regionResults, tolerated, started);

  for (const program of programs) {
    const files = Object.keys(FILES).filter((f) => FILES[f][program.name]);
    const dir = join(realpathSync(cacheDir), program.name);
    const roots = prepareDir(dir, program.links, files);
    for (const exact of [false, true]) {
      const label = `${program.name}${exact ? " +exactOptionalPropertyTypes" : ""}`;
      const t0 = Date.now();
      const diagnostics = compile(dir, roots, exact);
      let unexpected = 0;
      const byRoot = new Map(roots.map((r) => [r.copy, []]));
      for (const d of diagnostics) {
        const r = d.file && roots.find((x) => x.copy === d.file);
        if (r) {
          byRoot.get(r.copy).push(d);
          continue;
        }
        const inRealm = d.file ? relative(realmModules, d.file).split(sep).join("/") : "";
        const defect = REALM_DEFECTS.find((x) => x.file === inRealm && x.line === d.line && x.code === d.code);
        if (defect) {
          tolerated.add(`${defect.file}:${defect.line} ${defect.code}: ${defect.why}`);
          continue;
        }
        failures.push(`[${label}] ${d.file ? `${shown(d.file)}(${d.line},${d.col}): error ${d.code}: ` : ""}${d.text}`);
        unexpected++;
      }
      for (const r of roots) {
        const file = r.original.slice(typesDir.length + 1);
        const mode = FILES[file][program.name];
        const errors = byRoot.get(r.copy);
        if (mode === "pass") {
          for (const d of errors) failures.push(`[${label}] ${format(d, r.original, r.note)}`);
          unexpected += errors.length;
          continue;
        }
        const regions = pendingRegions(r.copy);
        if (regions.length === 0) failures.push(`${shown(r.original)}: a pending file without pending regions`);
        for (const region of regions) {
          if (!regionResults.has(region.id)) regionResults.set(region.id, { id: region.id, title: region.title, places: new Set(), errors: [] });
          regionResults.get(region.id).places.add(`${shown(r.original)}:${region.start}`);
        }
        for (const d of errors) {
          const region = regions.find((g) => d.line > g.start && d.line < g.end);
          if (!region) {
            failures.push(`[${label}] outside any pending region: ${format(d, r.original, r.note)}`);
            unexpected++;
          } else {
            regionResults.get(region.id).errors.push(`[${label}] ${format(d, r.original, r.note)}`);
          }
        }
      }
      console.log(
        `type-test: ${label} (${program.what}): ${roots.length} files, ${unexpected ? `${unexpected} unexpected errors` : "ok"} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
      );
    }
  }
  return finish(failures, regionResults, tolerated, started);
}

function finish(failures, regionResults, tolerated, started) {
  for (const t of tolerated) console.log(`type-test: tolerated a known error of realm's declarations: ${t}`);
  const pending = [...regionResults.values()];
  const failing = pending.filter((p) => p.errors.length > 0);
  const passing = pending.filter((p) => p.errors.length === 0);
  if (pending.length) {
    console.log(`\ntype-test: pending (known mismatches, not failures): ${failing.length} of ${pending.length} still fail`);
    for (const p of failing) {
      const count = new Set(p.errors.map((e) => e.replace(/^\[[^\]]*\] /, ""))).size;
      console.log(`  - ${p.id}: ${p.title} (${count} errors; ${[...p.places].join(", ")})`);
      if (verbose) for (const e of p.errors) console.log(`      ${e.replace(/\n/g, "\n      ")}`);
    }
  }
  if (passing.length) {
    console.log(`\ntype-test: pending regions that now compile (move them out of the .pending files):`);
    for (const p of passing) console.log(`  + ${p.id}: ${p.title} (${[...p.places].join(", ")})`);
    if (strict) for (const p of passing) failures.push(`pending region ${p.id} compiles (--strict)`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (failures.length) {
    console.error(`\ntype-test: FAILED (${failures.length}) in ${seconds} s:`);
    for (const f of failures) console.error(`  ${f.replace(/\n/g, "\n  ")}`);
    process.exitCode = 1;
  } else {
    console.log(`\ntype-test: ok in ${seconds} s`);
  }
}

main().catch((err) => {
  console.error(`type-test: ${err.stack ?? err}`);
  process.exitCode = 1;
});
