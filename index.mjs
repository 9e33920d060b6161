// The ES module entry point (package.json "exports" -> "import"). The binding
// itself is the CommonJS loader `index.js` that `napi build` generates; this
// file loads that same module instance (so ESM and CommonJS users share one
// addon and one set of classes) and re-exports it with names and a default.
//
// Node's CommonJS named-export detection cannot see `Auth`, which the addon
// adds while it initialises, hence the explicit list below. The package tests
// check that it names every export of the binding, so a new class fails them
// until it is added here (and to index.d.mts if it needs more than
// `export *`).
import { createRequire } from "node:module";

const binding = createRequire(import.meta.url)("./index.js");

export const {
  ApiKeyAuth,
  App,
  Auth,
  Credentials,
  EmailPasswordAuth,
  Emulator,
  ErrorCode,
  User,
  UserState,
  __napiBindingTarget,
  setLogLevel,
  setLogger,
} = binding;

/** The whole module, as realm v12's `import Realm from "realm"` gives it. */
export default binding;
