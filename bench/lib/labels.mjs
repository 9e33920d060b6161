// Display names of the benchmark's clients and operations, shared by the
// runner's tables, the charts and the comparison.

/** Client ids (bench/clients/*.mjs and the Rust floors) → names in tables and charts. */
export const CLIENT_LABEL = {
  native: "realm-auth-native",
  "native-memory": "realm-auth-native, users in memory only (diagnostic)",
  "native-fetch": "realm-auth-native through the fetch option, Node's fetch (diagnostic)",
  "realm-web": "realm-web 2.0.1",
  fetch: "raw fetch",
  floor: "raw Rust floor",
  "floor-hop": "raw Rust, cross-thread (diagnostic)",
  "floor-hyper": "raw Rust on hyper-util, no reqwest (diagnostic)",
  "floor-hyper-hop": "raw Rust on hyper-util, cross-thread (diagnostic)",
  "rust-sdk": "realm-auth-client in Rust, no Node (diagnostic)",
};

/** Operation ids → names. */
export const OP_LABEL = {
  fetchAll: "fetchAll (5 keys)",
  fetch: "fetch",
  createDelete: "create+delete",
  enableDisable: "enable/disable",
  login: "login (+profile)",
};

/** A mode (concurrency) → its name. */
export const modeLabel = (concurrency) => (concurrency === 1 ? "sequential" : `concurrency ${concurrency}`);

/** The server benchmark's operations (bench/server.mjs) → names. */
export const SERVER_OP_LABEL = { list: "GET /auth/api_keys (5 keys)", login: "API-key login" };

/** The server benchmark's backend floors → names. */
export const SERVER_FLOOR_LABEL = { memory: "HTTP only: hyper, fixed answer", sqlite: "rusqlite select loop", postgres: "pgbench -S" };
