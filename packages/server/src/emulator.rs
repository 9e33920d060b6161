//! `Emulator`: the embedded App Services emulator, for tests and demos.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_server as emu;
use serde_json::Value;

use crate::js_error::{INTERNAL, emulator_error};

/// The `code` of the process warning `Emulator.start` emits when it listens
/// on an address other machines may reach.
const EXPOSED_WARNING_CODE: &str = "REALM_AUTH_EMULATOR_EXPOSED";

/// `process.emitWarning(message, { type: "SecurityWarning", code })`; on
/// standard error if that fails (the env going away).
fn warn_exposed(env: &Env, message: &str) {
  let emit = || -> Result<()> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    let emit_warning: Function<FnArgs<(&str, Value)>, Unknown> =
      process.get_named_property("emitWarning")?;
    let options = serde_json::json!({ "type": "SecurityWarning", "code": EXPOSED_WARNING_CODE });
    emit_warning.apply(process, FnArgs::from((message, options)))?;
    Ok(())
  };
  if emit().is_err() {
    eprintln!("realm-auth-server: {message}");
  }
}

/// The numeric `code` of the errors `Emulator` throws: after the range of
/// `realm-auth-native`'s own `ErrorCode`s. The emulator's HTTP control API (`/_emulator/`)
/// answers with the same numbers in its error bodies.
#[napi]
// The members are the codes' names, prefixed as the HTTP listing spells them,
// so they stay unambiguous once destructured or printed next to `ErrorCode`s.
#[allow(clippy::enum_variant_names)]
pub enum EmulatorErrorCode {
  /// The emulator was stopped: every method called after `stop()` throws this.
  EmulatorStopped = 4910,
  /// `createUser` with an email that already has an account.
  EmulatorUserExists = 4911,
  /// `revokeSessions` or `setCustomData` with an unknown user id.
  EmulatorUserNotFound = 4912,
  /// Bad input, thrown as a `TypeError`: a password of the wrong length, an
  /// invalid fault, key name, option or command-line argument.
  EmulatorBadRequest = 4913,
  /// No such fault, pending confirmation or reset, or control route (HTTP only).
  EmulatorNotFound = 4914,
  /// `createServerApiKey` with a name that is already taken.
  EmulatorConflict = 4915,
  /// `Emulator.start` could not read or write its data file.
  EmulatorDataFile = 4916,
  /// `Emulator.start` could not listen on its host and port.
  EmulatorBindFailed = 4917,
  /// An HTTP control request without the control token (`Authorization:
  /// Bearer <emulator.controlToken>`) or with a wrong one (HTTP only).
  EmulatorUnauthorized = 4918,
  /// An HTTP control request naming a `Host` the emulator does not answer to,
  /// or sent by a web page of another origin (HTTP only).
  EmulatorForbidden = 4919,
}

// The numbers are the emulator crate's, which its HTTP errors carry: a
// mismatch fails the build rather than the user.
const _: () = {
  use emu::EmulatorErrorCode as Crate;
  assert!(EmulatorErrorCode::EmulatorStopped as u32 == Crate::Stopped as u32);
  assert!(EmulatorErrorCode::EmulatorUserExists as u32 == Crate::UserExists as u32);
  assert!(EmulatorErrorCode::EmulatorUserNotFound as u32 == Crate::UserNotFound as u32);
  assert!(EmulatorErrorCode::EmulatorBadRequest as u32 == Crate::BadRequest as u32);
  assert!(EmulatorErrorCode::EmulatorNotFound as u32 == Crate::NotFound as u32);
  assert!(EmulatorErrorCode::EmulatorConflict as u32 == Crate::Conflict as u32);
  assert!(EmulatorErrorCode::EmulatorDataFile as u32 == Crate::DataFile as u32);
  assert!(EmulatorErrorCode::EmulatorBindFailed as u32 == Crate::BindFailed as u32);
  assert!(EmulatorErrorCode::EmulatorUnauthorized as u32 == Crate::Unauthorized as u32);
  assert!(EmulatorErrorCode::EmulatorForbidden as u32 == Crate::Forbidden as u32);
  assert!(Crate::ALL.len() == 10);
};

/// A running App Services emulator on 127.0.0.1 (in this process). Point an
/// App at it with `new App({ id: emulator.appId, baseUrl: emulator.baseUrl })`.
#[napi]
pub struct Emulator {
  inner: Arc<emu::Emulator>,
  control: emu::Control,
  /// Set by the first `stop()`, synchronously, so that a call right after an
  /// un-awaited `stop()` fails too.
  stopped: AtomicBool,
}

/// The JS error with `code`'s number: a `TypeError` for bad input.
fn error(env: &Env, code: emu::EmulatorErrorCode, message: &str) -> Error {
  emulator_error(
    env,
    code.value(),
    message,
    code == emu::EmulatorErrorCode::BadRequest,
  )
}

fn bad_request(env: &Env, message: &str) -> Error {
  error(env, emu::EmulatorErrorCode::BadRequest, message)
}

fn control_result<T>(env: &Env, result: std::result::Result<T, emu::ControlError>) -> Result<T> {
  result.map_err(|e| error(env, e.code(), e.message()))
}

/// Control results go to JS through `serde_json::Value`, so that integers
/// (u64 timestamps) become JS numbers rather than BigInts. (Plain data always
/// serializes: a failure is a bug.)
fn to_js<T: serde::Serialize>(env: &Env, value: &T) -> Result<Value> {
  serde_json::to_value(value).map_err(|e| emulator_error(env, INTERNAL, &e.to_string(), false))
}

#[napi]
impl Emulator {
  /// The `[name, value]` pairs `util.inspect` shows: where it serves which app.
  #[napi(catch_unwind, js_name = "inspectFields", skip_typescript)]
  pub fn inspect_fields(&self) -> Value {
    serde_json::json!([
      ["baseUrl", self.inner.base_url()],
      ["appId", self.inner.app_id()]
    ])
  }

  /// Starts an emulator (default: 127.0.0.1, a free port, app id
  /// `emulator-app`). Rejects with a TypeError (`EmulatorBadRequest`) for bad
  /// options, `EmulatorBindFailed` when the port is taken and
  /// `EmulatorDataFile` when the data file cannot be used. Bound to an address
  /// other machines may reach (`host: "0.0.0.0"`), it emits a process warning
  /// (a `SecurityWarning`, code `REALM_AUTH_EMULATOR_EXPOSED`).
  #[napi(
    catch_unwind,
    ts_args_type = "options?: EmulatorOptions",
    ts_return_type = "Promise<Emulator>"
  )]
  pub fn start<'env>(env: &'env Env, options: Option<Value>) -> Result<PromiseRaw<'env, Emulator>> {
    // Bad options reject too, rather than throw: callers of an async method
    // look for its failures in one place.
    let config: std::result::Result<emu::Config, String> = match options {
      None | Some(Value::Null) => Ok(emu::Config::default()),
      Some(v) => serde_json::from_value(v).map_err(|e| format!("invalid emulator options: {e}")),
    };
    env.spawn_future_with_callback(
      async move {
        Ok(match config {
          Ok(config) => emu::Emulator::start(config)
            .await
            .map_err(|e| (e.code(), e.to_string())),
          Err(message) => Err((emu::EmulatorErrorCode::BadRequest, message)),
        })
      },
      |env, started| match started {
        Ok(inner) => {
          if let Some(warning) = inner.exposure_warning() {
            warn_exposed(env, &warning);
          }
          Ok(Emulator {
            control: inner.control(),
            inner: Arc::new(inner),
            stopped: AtomicBool::new(false),
          })
        }
        Err((code, message)) => Err(error(env, code, &message)),
      },
    )
  }

  /// Parses command-line arguments (`--port 9191 --app-id my-app …`) into
  /// options for `start`; `null` when `--help` was given. Secrets not given
  /// as arguments are read from `REALM_AUTH_EMULATOR_CONTROL_TOKEN` and
  /// `REALM_AUTH_EMULATOR_CUSTOM_TOKEN_SECRET`. Throws a TypeError
  /// (`EmulatorErrorCode.EmulatorBadRequest`) naming the bad argument or the
  /// unreadable secret file.
  #[napi(catch_unwind, ts_return_type = "EmulatorOptions | null")]
  pub fn parse_args(env: Env, args: Vec<String>) -> Result<Value> {
    match emu::cli::parse_args(args) {
      Ok(Some(cli)) => to_js(&env, &cli.config),
      Ok(None) => Ok(Value::Null),
      Err(message) => Err(bad_request(&env, &message)),
    }
  }

  /// The help text of `realm-auth-server emulator`.
  #[napi(catch_unwind)]
  pub fn usage() -> String {
    emu::cli::USAGE.to_owned()
  }

  /// Parses the arguments of `realm-auth-server serve` into options for
  /// `start`: a production server on SQLite or PostgreSQL, without the control
  /// API (its `/_emulator/` paths answer 404); `null` when `--help` was given.
  /// Throws a TypeError (`EmulatorBadRequest`) naming the bad argument or
  /// config file, or when no SQL store is given.
  #[napi(catch_unwind, ts_return_type = "EmulatorOptions | null")]
  pub fn parse_serve_args(env: Env, args: Vec<String>) -> Result<Value> {
    match emu::cli::parse_serve_args(args) {
      Ok(Some(cli)) if cli.threads != 1 => Err(bad_request(
        &env,
        "--threads is taken only by the realm-auth-server binary (this server runs on the addon's threads)",
      )),
      Ok(Some(cli)) => to_js(&env, &cli.config),
      Ok(None) => Ok(Value::Null),
      Err(message) => Err(bad_request(&env, &message)),
    }
  }

  /// The help text of `realm-auth-server serve`.
  #[napi(catch_unwind)]
  pub fn serve_usage() -> String {
    emu::cli::SERVE_USAGE.replace(
      "  --threads <n>                 tokio worker threads (default 1)\n",
      "",
    )
  }

  /// Rereads the TLS certificate and key files (`tlsCertFile`, `tlsKeyFile`)
  /// for the connections accepted from now on; `false` when the server does
  /// not serve HTTPS. Throws a TypeError (`EmulatorBadRequest`) naming the file
  /// that cannot be used, and keeps the current certificate then.
  #[napi(catch_unwind)]
  pub fn reload_tls(&self, env: Env) -> Result<bool> {
    self.check_running(&env)?;
    self
      .inner
      .reload_tls()
      .map_err(|e| bad_request(&env, &e.to_string()))
  }

  /// The line `realm-auth-server serve` prints once it listens (`json`: as
  /// one JSON object).
  #[napi(catch_unwind)]
  pub fn serving_line(&self, env: Env, json: bool) -> Result<String> {
    self.check_running(&env)?;
    let (base_url, apps) = (self.inner.base_url(), self.inner.app_ids());
    Ok(if json {
      emu::cli::serving_json(&base_url, &apps)
    } else {
      emu::cli::serving_line(&base_url, &apps)
    })
  }

  /// The line the command line prints once the emulator listens.
  #[napi(catch_unwind)]
  pub fn listening_line(&self, env: Env) -> Result<String> {
    self.check_running(&env)?;
    Ok(emu::cli::listening_line(
      &self.inner.base_url(),
      self.inner.app_id(),
    ))
  }

  /// The line the command line prints after the listening line: the control
  /// token and how to send it.
  #[napi(catch_unwind)]
  pub fn control_token_line(&self, env: Env) -> Result<String> {
    self.check_running(&env)?;
    Ok(emu::cli::control_token_line(self.inner.control_token()))
  }

  /// The control token: HTTP requests to `/_emulator/` (all but `GET
  /// /_emulator/`) must send `Authorization: Bearer <controlToken>`. The
  /// `controlToken` option, or a random one. (The methods of this object
  /// need no token.)
  #[napi(catch_unwind, getter)]
  pub fn control_token(&self) -> String {
    self.inner.control_token().to_owned()
  }

  /// `http://127.0.0.1:<port>`: the base URL to give an App.
  #[napi(catch_unwind, getter)]
  pub fn base_url(&self) -> String {
    self.inner.base_url()
  }

  /// The app id the emulator serves.
  #[napi(catch_unwind, getter)]
  pub fn app_id(&self) -> String {
    self.inner.app_id().to_owned()
  }

  /// The port it listens on.
  #[napi(catch_unwind, getter)]
  pub fn port(&self) -> u32 {
    self.inner.port().into()
  }

  /// Stops serving and closes every connection. Safe to call twice. Every
  /// other method then throws `EmulatorErrorCode.EmulatorStopped` (the
  /// `baseUrl`, `appId` and `port` getters keep answering).
  #[napi(catch_unwind, ts_return_type = "Promise<void>")]
  pub fn stop<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
    self.stopped.store(true, Ordering::Release);
    let inner = self.inner.clone();
    env.spawn_future(async move {
      inner.stop().await;
      Ok(())
    })
  }

  /// Creates a confirmed email/password user. The password is hashed on a
  /// worker thread, not the JS thread. Rejects with
  /// `EmulatorErrorCode.EmulatorUserExists` when the email is taken, a
  /// TypeError (`EmulatorBadRequest`) for an empty email or a password that is
  /// not 6 to 128 characters long, and `EmulatorStopped` after `stop()`.
  #[napi(catch_unwind, ts_return_type = "Promise<EmulatorUser>")]
  pub fn create_user<'env>(
    &self,
    env: &'env Env,
    email: String,
    password: String,
  ) -> Result<PromiseRaw<'env, Value>> {
    // Every failure rejects, the stopped emulator's too: one place to look.
    let stopped = self.stopped_message();
    let control = self.control.clone();
    env.spawn_future_with_callback(
      async move {
        Ok(match stopped {
          Some(message) => Err((emu::EmulatorErrorCode::Stopped, message)),
          None => control
            .create_user_async(email, password)
            .await
            .map_err(|e| (e.code(), e.message().to_owned())),
        })
      },
      |env, created| match created {
        Ok(user) => to_js(env, &user),
        Err((code, message)) => Err(error(env, code, &message)),
      },
    )
  }

  /// Creates a server API key; its `key` is shown only here. Throws
  /// `EmulatorErrorCode.EmulatorConflict` when the name is taken, and a
  /// TypeError (`EmulatorBadRequest`) for an invalid name.
  #[napi(catch_unwind, ts_return_type = "EmulatorServerApiKey")]
  pub fn create_server_api_key(&self, env: Env, name: String) -> Result<Value> {
    self.check_running(&env)?;
    let key = control_result(&env, self.control.create_server_api_key(&name))?;
    to_js(&env, &key)
  }

  /// Makes the next matching request(s) fail as described; returns the
  /// fault's id. Throws a TypeError (`EmulatorBadRequest`) for an invalid fault.
  #[napi(catch_unwind, ts_args_type = "fault: FaultSpec")]
  pub fn inject_fault(&self, env: Env, fault: Value) -> Result<String> {
    self.check_running(&env)?;
    let spec: emu::FaultSpec = serde_json::from_value(fault)
      .map_err(|e| bad_request(&env, &format!("invalid fault: {e}")))?;
    control_result(&env, self.control.inject_fault(spec))
  }

  /// Removes every fault.
  #[napi(catch_unwind)]
  pub fn clear_faults(&self, env: Env) -> Result<()> {
    self.check_running(&env)?;
    self.control.clear_faults();
    Ok(())
  }

  /// Makes every access token issued so far invalid (401 `InvalidSession`).
  #[napi(catch_unwind)]
  pub fn expire_access_tokens(&self, env: Env) -> Result<()> {
    self.check_running(&env)?;
    self.control.expire_access_tokens();
    Ok(())
  }

  /// Ends every session of a user: its refresh and access tokens stop
  /// working. Throws `EmulatorErrorCode.EmulatorUserNotFound` for an unknown id.
  #[napi(catch_unwind)]
  pub fn revoke_sessions(&self, env: Env, user_id: String) -> Result<()> {
    self.check_running(&env)?;
    control_result(&env, self.control.revoke_sessions(&user_id))
  }

  /// Sets a user's custom data (the `user_data` claim of its next access
  /// tokens). Throws `EmulatorErrorCode.EmulatorUserNotFound` for an unknown
  /// id, and a TypeError (`EmulatorBadRequest`) when `data` is not an object.
  #[napi(
    catch_unwind,
    ts_args_type = "userId: string, data: Record<string, unknown>"
  )]
  pub fn set_custom_data(&self, env: Env, user_id: String, data: Value) -> Result<()> {
    self.check_running(&env)?;
    control_result(&env, self.control.set_custom_data(&user_id, data))
  }

  /// The requests that reached the emulator (in the order they ended),
  /// secrets redacted, each with its `outcome`: faulted ones and ones the
  /// client gave up on included.
  #[napi(catch_unwind, ts_return_type = "LoggedRequest[]")]
  pub fn requests(&self, env: Env) -> Result<Value> {
    self.check_running(&env)?;
    to_js(&env, &self.control.requests())
  }

  /// Forgets the request log.
  #[napi(catch_unwind)]
  pub fn clear_requests(&self, env: Env) -> Result<()> {
    self.check_running(&env)?;
    self.control.clear_requests();
    Ok(())
  }

  /// The confirmation token pair "emailed" to an unconfirmed user, or `null`.
  #[napi(catch_unwind, ts_return_type = "EmulatorTokenPair | null")]
  pub fn pending_confirmation(&self, env: Env, email: String) -> Result<Value> {
    self.check_running(&env)?;
    to_js(&env, &self.control.pending_confirmation(&email))
  }

  /// The password reset token pair "emailed" to a user, or `null`.
  #[napi(catch_unwind, ts_return_type = "EmulatorTokenPair | null")]
  pub fn pending_reset(&self, env: Env, email: String) -> Result<Value> {
    self.check_running(&env)?;
    to_js(&env, &self.control.pending_reset(&email))
  }

  /// Forgets all users, keys, sessions, faults and the request log.
  #[napi(catch_unwind)]
  pub fn reset(&self, env: Env) -> Result<()> {
    self.check_running(&env)?;
    self.control.reset();
    Ok(())
  }
}

impl Emulator {
  /// Fails with `EmulatorStopped` once `stop()` was called: the server is gone,
  /// so a control call would act on a state nobody can reach.
  fn check_running(&self, env: &Env) -> Result<()> {
    match self.stopped_message() {
      Some(message) => Err(error(env, emu::EmulatorErrorCode::Stopped, &message)),
      None => Ok(()),
    }
  }

  /// What `EmulatorStopped` says, once `stop()` was called.
  fn stopped_message(&self) -> Option<String> {
    self.stopped.load(Ordering::Acquire).then(|| {
      format!(
        "the emulator at {} is stopped: start a new one with Emulator.start()",
        self.inner.base_url()
      )
    })
  }
}
