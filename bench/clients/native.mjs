// realm-auth-native (this project), the release build copied to bench/.build.
import { createRequire } from "node:module";
import { sdkOps } from "./sdk-ops.mjs";

export const name = "realm-auth-native";

export function load(cfg) {
  return createRequire(import.meta.url)(cfg.nativeEntry);
}

export function setup(Realm, cfg) {
  return sdkOps(Realm, cfg, `native-${process.pid}`);
}
