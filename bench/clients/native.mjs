// realm-auth-native (this project), the release build copied to bench/.build,
// with realm v12's default: users kept in a file (a fresh folder per process).
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { sdkOps } from "./sdk-ops.mjs";

export const name = "realm-auth-native";

export function load(cfg) {
  return createRequire(import.meta.url)(cfg.nativeEntry);
}

export function setup(Realm, cfg) {
  const baseFilePath = fs.mkdtempSync(path.join(os.tmpdir(), "realm-auth-bench-"));
  process.on("exit", () => fs.rmSync(baseFilePath, { recursive: true, force: true }));
  return sdkOps(Realm, cfg, `native-${process.pid}`, { baseFilePath });
}
