#!/usr/bin/env node
// Runs the JS test suite (__test__/*.test.ts) on every Node line we support
// (20, 22 and 24: package.json engines says ">= 20") and fails if any run
// fails. The addon is not rebuilt: one .node (Node-API) loads on all of them,
// so build it once first (`npm run build:debug` or `npm test`).
//
//   npm run test:node-matrix                  # Node 20, 22 and 24
//   node scripts/node-matrix.mjs 22 24        # only these lines
//   node scripts/node-matrix.mjs --current    # only the running node (CI)
//   node scripts/node-matrix.mjs -- __test__/app.test.ts   # only these files
//
// The running node serves its own line. Other lines come from the npm registry
// as plain packages (node-<os>-<arch>@<version>, no install script), fetched on
// first use into node_modules/.cache/node-matrix/ and reused afterwards. They
// are not devDependencies on purpose: those packages declare `os` and `cpu`,
// and npm refuses to install a non-optional dependency for another platform,
// so `npm ci` would fail on macOS, Windows and arm64. NODE_MATRIX_<major>=<path>
// points a line at a node binary of your own (e.g. on musl, where the
// registry's builds do not run).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The Node versions tested, one per supported major line. */
const NODE_VERSIONS = { 20: "20.20.2", 22: "22.23.3", 24: "24.21.0" };

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const cacheDir = join(root, "node_modules", ".cache", "node-matrix");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";

function parseArgs(argv) {
  const majors = [];
  let files = null;
  let current = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      files = argv.slice(i + 1);
      break;
    } else if (arg === "--current") {
      current = true;
    } else if (arg === "-h" || arg === "--help") {
      console.log("usage: node scripts/node-matrix.mjs [--current | <major>...] [-- <test file>...]");
      process.exit(0);
    } else if (/^\d+$/.test(arg) && arg in NODE_VERSIONS) {
      majors.push(arg);
    } else {
      console.error(`node-matrix: unknown argument '${arg}' (lines: ${Object.keys(NODE_VERSIONS).join(", ")})`);
      process.exit(2);
    }
  }
  return { majors, files, current };
}

/** `__test__/*.test.ts`, listed here because Node 20's --test takes no globs. */
function testFiles() {
  return readdirSync(join(root, "__test__"))
    .filter((name) => name.endsWith(".test.ts"))
    .sort()
    .map((name) => join("__test__", name));
}

/** The npm package holding the official Node build for this machine. */
function nodePackage(version) {
  const os = process.platform === "win32" ? "win" : process.platform;
  return `node-${os}-${process.arch}@${version}`;
}

/** Path of a node binary for `major`, fetched from the registry if needed. */
function nodeFor(major) {
  const override = process.env[`NODE_MATRIX_${major}`];
  if (override) return override;
  if (process.versions.node.split(".")[0] === major) return process.execPath;
  const version = NODE_VERSIONS[major];
  const prefix = join(cacheDir, version);
  const spec = nodePackage(version);
  const pkgDir = join(prefix, "node_modules", spec.slice(0, spec.lastIndexOf("@")));
  if (!existsSync(join(pkgDir, "package.json"))) {
    mkdirSync(prefix, { recursive: true });
    console.log(`node-matrix: fetching ${spec} from the npm registry`);
    const install = spawnSync(
      npm,
      ["install", "--prefix", prefix, "--no-save", "--no-package-lock", "--no-audit", "--no-fund", "--ignore-scripts", spec],
      { stdio: "inherit", shell: process.platform === "win32" },
    );
    if (install.status !== 0) {
      throw new Error(`could not install ${spec}; set NODE_MATRIX_${major} to a node ${major} binary instead`);
    }
  }
  const bin = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")).bin?.node ?? "bin/node";
  return join(pkgDir, bin);
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const current = process.versions.node.split(".")[0];
  const majors = args.current ? [current] : args.majors.length ? args.majors : Object.keys(NODE_VERSIONS);
  const files = args.files ?? testFiles();
  const results = [];
  for (const major of majors) {
    const started = Date.now();
    let node;
    let status;
    try {
      node = nodeFor(major);
      const version = spawnSync(node, ["--version"], { encoding: "utf8" }).stdout?.trim() ?? "?";
      const shown = node.startsWith(root) ? relative(root, node) : node;
      console.log(`\nnode-matrix: Node ${version} (${shown}): ${files.length} test files`);
      // tsx on every line: Node 20 has no type stripping, and one loader
      // everywhere keeps the runs comparable.
      status = spawnSync(node, ["--import", "tsx", "--test", ...files], { cwd: root, stdio: "inherit" }).status;
    } catch (err) {
      console.error(`node-matrix: Node ${major}: ${err.message}`);
      status = null;
    }
    results.push({ major, node, ok: status === 0, seconds: (Date.now() - started) / 1000 });
  }
  console.log("\nnode-matrix summary:");
  for (const r of results) {
    console.log(`  Node ${r.major}: ${r.ok ? "pass" : "FAIL"} in ${r.seconds.toFixed(1)} s`);
  }
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}

main();
