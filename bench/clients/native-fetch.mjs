// realm-auth-native with realm v12's `fetch` option set to Node's global
// fetch: every request crosses to the JS thread and back. Beside
// `native-memory` (same settings, the Rust transport), it shows what the
// option costs.
import { load } from "./native.mjs";
import { sdkOps } from "./sdk-ops.mjs";

export const name = "realm-auth-native-fetch";
export { load };

export function setup(Realm, cfg) {
  return sdkOps(Realm, cfg, `native-fetch-${process.pid}`, {
    metadata: { mode: Realm.MetadataMode.InMemory },
    fetch: globalThis.fetch,
  });
}
