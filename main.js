// The package's CommonJS entry: the loader `napi build` generates (index.js),
// plus realm v12's `BSON` (its subset of the bson package), which a native
// module cannot require. index.mjs re-exports this module for ES modules.
"use strict";

module.exports = require("./index.js");

const bson = require("bson");

/** realm v12's `Realm.BSON`: ObjectId, Decimal128, UUID, Binary and EJSON from bson 4. */
module.exports.BSON = Object.freeze({
  ObjectId: bson.ObjectId,
  ObjectID: bson.ObjectID,
  Decimal128: bson.Decimal128,
  UUID: bson.UUID,
  Binary: bson.Binary,
  EJSON: bson.EJSON,
});
