// realm-auth-native with `metadata: { mode: MetadataMode.InMemory }`: no user
// store. Beside `native`, it shows what keeping users in a file costs.
import { load } from "./native.mjs";
import { sdkOps } from "./sdk-ops.mjs";

export const name = "realm-auth-native-memory";
export { load };

export function setup(Realm, cfg) {
  return sdkOps(Realm, cfg, `native-memory-${process.pid}`, { metadata: { mode: Realm.MetadataMode.InMemory } });
}
