// The ES module entry point (package.json "exports" -> "import"). The binding
// is the CommonJS entry `main.js` (the loader `index.js` that `napi build`
// generates, plus `BSON`); this file re-exports that same module instance, so
// ESM and CommonJS users share one addon and one set of classes.
//
// `export *` re-exports every `module.exports.X = …` line of the loader (Node
// finds them with cjs-module-lexer), so new exports need no change here.
// `Auth`, `RealmAuthError` and `isRealmAuthError` are the exceptions: the
// addon adds them while it initialises, where the lexer cannot see them. The default export is the whole module, as realm v12's
// `import Realm from "realm"` gives it. The package tests check that this file
// exports exactly what `require()` returns.
import { createRequire } from "node:module";

const binding = createRequire(import.meta.url)("./main.js");

export * from "./main.js";
export const { Auth, RealmAuthError, isRealmAuthError } = binding;
export default binding;
