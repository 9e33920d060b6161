#!/usr/bin/env node
// Builds the client addon: `napi build --platform <args>`, then scripts/patch-dts.mjs on the
// generated index.d.ts. One script, so that `npm run build -- --target <triple>` (CI's
// cross builds) hands its flags to napi, not to the patch step.
//
//   node scripts/build.mjs --release                       # npm run build
//   node scripts/build.mjs --release --target aarch64-apple-darwin
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const napi = join(root, "node_modules", ".bin", process.platform === "win32" ? "napi.cmd" : "napi");
const build = spawnSync(napi, ["build", "--platform", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
  shell: process.platform === "win32",
});
if (build.status !== 0) process.exit(build.status ?? 1);
await import("./patch-dts.mjs");
