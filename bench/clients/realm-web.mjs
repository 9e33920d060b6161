// realm-web 2.0.1, the official pure-JS SDK, through the same code as ours.
import { createRequire } from "node:module";
import { sdkOps } from "./sdk-ops.mjs";

export const name = "realm-web";

export function load() {
  return createRequire(import.meta.url)("realm-web");
}

export function setup(Realm, cfg) {
  return sdkOps(Realm, cfg, `web-${process.pid}`);
}
