//! realm-auth-emulator: a local App Services-compatible auth server.
