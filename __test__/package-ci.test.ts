// The GitHub Actions workflow cannot run here, so its shape is checked against
// package.json instead: every napi target is built with the right cross
// compiler and tested, every supported Node line is tested on Linux, macOS
// and Windows, and the publish job waits for all of it and publishes with
// provenance.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { load } from "js-yaml";

const root = join(__dirname, "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const targets: string[] = pkg.napi.targets;
const workflow = load(readFileSync(join(root, ".github", "workflows", "CI.yml"), "utf8")) as Workflow;
const jobs = workflow.jobs;

/** The Node lines we support: one per major from engines.node up, as tested. */
const NODE_LINES = ["20", "22", "24"];

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  "runs-on": string;
  needs?: string[] | string;
  if?: string;
  permissions?: Record<string, string>;
  strategy?: { matrix: Record<string, any> };
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  env: Record<string, string>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

function needsOf(job: Job): string[] {
  return job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs];
}

function uses(job: Job, action: string): Step[] {
  return job.steps.filter((s) => s.uses?.startsWith(`${action}@`));
}

function runs(job: Job): string {
  return job.steps.map((s) => s.run ?? "").join("\n");
}

/** Which OS a target runs on, as GitHub runner label prefixes. */
function runnerFamily(target: string): string {
  if (target.includes("linux")) return "ubuntu";
  if (target.includes("apple-darwin")) return "macos";
  if (target.includes("windows")) return "windows";
  throw new Error(`unknown target ${target}`);
}

/** The test jobs: those that download a built binary and run the suite. */
const testJobs = Object.entries(jobs).filter(([, job]) => uses(job, "actions/download-artifact").length > 0 && /node-matrix\.mjs --current/.test(runs(job)));

describe("CI workflow (.github/workflows/CI.yml)", () => {
  it("builds every napi target exactly once, with napi-rs's cross-compilation flags", () => {
    const entries: { host: string; target: string; build: string }[] = jobs.build.strategy!.matrix.settings;
    assert.deepEqual(entries.map((e) => e.target).sort(), [...targets].sort());
    for (const { host, target, build } of entries) {
      assert.ok(host.startsWith(runnerFamily(target)), `${target} is built on ${host}`);
      const args = build.split(/\s+/);
      assert.equal(args[args.indexOf("--target") + 1], target, build);
      assert.match(build, /^npm run build -- /, "the build goes through package.json's build script");
      assert.equal(args.includes("--use-napi-cross"), target.endsWith("-linux-gnu"), `${target}: --use-napi-cross iff linux-gnu`);
      assert.equal(args.includes("-x"), target.endsWith("-linux-musl"), `${target}: -x (zig) iff linux-musl`);
    }
    assert.equal(jobs.build["runs-on"], "${{ matrix.settings.host }}");
    const zig = jobs.build.steps.filter((s) => /zig/i.test(`${s.name} ${s.uses}`));
    assert.ok(zig.length >= 2 && zig.every((s) => /contains\(matrix\.settings\.target, 'musl'\)/.test(String((s as any).if))));
  });

  it("uploads each binary under its target's name, and the tests download that name", () => {
    assert.equal(workflow.env.APP_NAME, pkg.napi.binaryName);
    const [upload] = uses(jobs.build, "actions/upload-artifact");
    assert.equal(upload.with!.name, "bindings-${{ matrix.settings.target }}");
    assert.equal(upload.with!.path, "${{ env.APP_NAME }}.*.node");
    assert.equal(upload.with!["if-no-files-found"], "error");
    assert.ok(testJobs.length >= 2);
    for (const [name, job] of testJobs) {
      const [download] = uses(job, "actions/download-artifact");
      assert.match(String(download.with!.name), /^bindings-\$\{\{ matrix\.(settings\.)?target \}\}$/, name);
      assert.ok(needsOf(job).includes("build"), `${name} needs build`);
    }
  });

  it("tests every built target on Node 20, 22 and 24, on Linux, macOS and Windows", () => {
    const tested = new Set<string>();
    const families = new Set<string>();
    for (const [name, job] of testJobs) {
      const matrix = job.strategy!.matrix;
      assert.deepEqual(matrix.node.map(String), NODE_LINES, `${name} runs every Node line`);
      const jobTargets: string[] = matrix.settings ? matrix.settings.map((s: any) => s.target) : matrix.target;
      for (const t of jobTargets) {
        tested.add(t);
        families.add(runnerFamily(t));
      }
      if (matrix.settings) {
        for (const s of matrix.settings) assert.ok(s.host.startsWith(runnerFamily(s.target)), `${s.target} tested on ${s.host}`);
      }
    }
    assert.deepEqual([...tested].sort(), [...targets].sort());
    assert.deepEqual([...families].sort(), ["macos", "ubuntu", "windows"]);
    // engines.node promises what the matrix tests, and the local script tests the same lines.
    assert.equal(pkg.engines.node, `>= ${NODE_LINES[0]}`);
    const script = readFileSync(join(root, "scripts", "node-matrix.mjs"), "utf8");
    const local = /const NODE_VERSIONS = \{([^}]*)\}/.exec(script)![1].match(/(\d+):/g)!.map((m) => m.slice(0, -1));
    assert.deepEqual(local, NODE_LINES);
  });

  it("builds, tests and publishes the server package's binary next to the client's", () => {
    const server = JSON.parse(readFileSync(join(root, "packages", "server", "package.json"), "utf8"));
    assert.deepEqual(server.napi.targets, targets, "the same targets as the client");
    assert.match(runs(jobs.build), /npm run build:server -- \$\{build#npm run build -- \}/, "built with the client's flags");
    assert.equal(pkg.scripts["build:server"], "npm run build -w realm-auth-server --", "passes the flags on to napi build");
    const upload = uses(jobs.build, "actions/upload-artifact").find((s) => String(s.with!.name).startsWith("server-"));
    assert.ok(upload, "the build uploads the server's binary");
    assert.equal(upload.with!.name, "server-bindings-${{ matrix.settings.target }}");
    assert.equal(upload.with!.path, `packages/server/${server.napi.binaryName}.*.node`);
    for (const [name, job] of testJobs) {
      const download = uses(job, "actions/download-artifact").find((s) => String(s.with!.name).startsWith("server-"));
      assert.ok(download, `${name} downloads the server's binary (the tests start emulators with it)`);
      assert.match(String(download.with!.name), /^server-bindings-\$\{\{ matrix\.(settings\.)?target \}\}$/, name);
      assert.equal(download.with!.path, "packages/server", name);
    }
    const published = uses(jobs.publish, "actions/download-artifact").find((s) => s.with!.pattern === "server-bindings-*");
    assert.equal(published?.with!.path, "packages/server/artifacts", "napi artifacts -w realm-auth-server reads packages/server/artifacts");
    const script = runs(jobs.publish);
    assert.match(script, /npm run create-npm-dirs -w realm-auth-server/);
    assert.match(script, /npm run artifacts -w realm-auth-server/);
    assert.match(script, /npm publish -w realm-auth-server --provenance --access public/);
    assert.equal(server.scripts.prepublishOnly, pkg.scripts.prepublishOnly);
    assert.equal(server.publishConfig.provenance, true);
  });

  it("runs musl binaries in Alpine and glibc binaries in Debian, on a runner of the target's architecture", () => {
    const job = jobs["test-linux"];
    assert.equal(job["runs-on"], "${{ contains(matrix.target, 'aarch64') && 'ubuntu-24.04-arm' || 'ubuntu-latest' }}");
    assert.match(runs(job), /node:\$\{\{ matrix\.node \}\}-\$\{\{ contains\(matrix\.target, 'musl'\) && 'alpine' \|\| 'slim' \}\}/);
  });

  it("names only jobs that exist in needs", () => {
    for (const [name, job] of Object.entries(jobs)) {
      for (const need of needsOf(job)) assert.ok(need in jobs, `${name} needs unknown job ${need}`);
    }
  });

  it("lints with the same commands as .ci/run", () => {
    const lint = runs(jobs.lint);
    for (const command of [
      "npm ci",
      "cargo fmt --all -- --check",
      "cargo clippy --workspace --all-targets -- -D warnings",
      "npx tsc --noEmit -p tsconfig.json",
      "npx tsc --noEmit -p examples/tsconfig.json",
    ]) {
      assert.ok(lint.includes(command), command);
    }
    assert.match(runs(jobs["cargo-test"]), /cargo test --workspace/);
  });

  it("publishes only from a version tag, after every check, with provenance", () => {
    const publish = jobs.publish;
    assert.deepEqual(workflow.permissions, { contents: "read" }, "jobs get no write access by default");
    assert.equal(publish.permissions?.["id-token"], "write");
    assert.match(publish.if!, /startsWith\(github\.ref, 'refs\/tags\/v'\)/);
    const gating = Object.keys(jobs).filter((j) => j !== "publish" && j !== "build");
    assert.deepEqual(needsOf(publish).sort(), gating.sort());
    const script = runs(publish);
    assert.match(script, /npm config set provenance true/);
    assert.match(script, /npm publish --provenance --access public/);
    assert.match(script, /npx napi create-npm-dirs/);
    assert.match(script, /npm run artifacts/);
    assert.equal(pkg.scripts.artifacts, "napi artifacts");
    assert.equal(pkg.scripts.prepublishOnly, "napi prepublish -t npm --no-gh-release", "publishes the platform packages, writes optionalDependencies; no GitHub release (it needs contents: write)");
    const [download] = uses(publish, "actions/download-artifact");
    assert.equal(download.with!.path, "artifacts", "napi artifacts reads ./artifacts");
    const [setup] = uses(publish, "actions/setup-node");
    assert.equal(setup.with!["registry-url"], "https://registry.npmjs.org");
    assert.equal(pkg.publishConfig.provenance, true);
  });
});
