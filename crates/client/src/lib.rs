//! realm-auth-client: a pure-Rust client for the App Services auth API.
