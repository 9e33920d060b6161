// Types of the ES module entry point (index.mjs): every named export of the
// binding's generated index.d.ts, and the whole module as the default export,
// so that `import Realm from "realm-auth-native"` gives `Realm.App`,
// `Realm.Auth.ApiKeyAuth`, `Realm.ErrorCode` and the type `Realm.User`.
import * as Realm from "./index.js";

export * from "./index.js";
export default Realm;
