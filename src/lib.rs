//! realm-auth-native: the napi-rs binding layer.
#![deny(clippy::all)]
