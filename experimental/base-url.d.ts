// `App.baseUrl` and `App.updateBaseUrl()` are declared on `App` itself (see
// index.d.ts): this entry point only exists so that realm v12's
// `import "realm/experimental/base-url"` has a counterpart.
export {};
