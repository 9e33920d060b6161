// `import "realm-auth-native/experimental/base-url"`, as realm v12's
// `realm/experimental/base-url`. Here `app.baseUrl` and `app.updateBaseUrl()`
// exist without this import; it adds v12's refusal to assign `baseUrl`.
"use strict";

const { App } = require("../index.js");

const { get } = Object.getOwnPropertyDescriptor(App.prototype, "baseUrl");
Object.defineProperty(App.prototype, "baseUrl", {
  get,
  set() {
    // realm v12's words.
    throw new Error("Cannot assign the base URL, please use 'updateBaseUrl()'.");
  },
  configurable: true,
  enumerable: false,
});
