//! `Emulator`: the embedded App Services emulator, for tests and demos.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_emulator as emu;
use serde_json::Value;

use crate::js_error::emulator_error;

/// A running App Services emulator on 127.0.0.1 (in this process). Point an
/// App at it with `new App({ id: emulator.appId, baseUrl: emulator.baseUrl })`.
#[napi]
pub struct Emulator {
  inner: Arc<emu::Emulator>,
  control: emu::Control,
}

fn control_result<T>(env: &Env, result: std::result::Result<T, emu::ControlError>) -> Result<T> {
  result.map_err(|e| emulator_error(env, e.message(), e.status() == 400))
}

/// Control results go to JS through `serde_json::Value`, so that integers
/// (u64 timestamps) become JS numbers rather than BigInts.
fn to_js<T: serde::Serialize>(env: &Env, value: &T) -> Result<Value> {
  serde_json::to_value(value).map_err(|e| emulator_error(env, &e.to_string(), false))
}

#[napi]
impl Emulator {
  /// The `[name, value]` pairs `util.inspect` shows: where it serves which app.
  #[napi(js_name = "inspectFields", skip_typescript)]
  pub fn inspect_fields(&self) -> Value {
    serde_json::json!([
      ["baseUrl", self.inner.base_url()],
      ["appId", self.inner.app_id()]
    ])
  }

  /// Starts an emulator (default: 127.0.0.1, a free port, app id `emulator-app`).
  #[napi(
    ts_args_type = "options?: EmulatorOptions",
    ts_return_type = "Promise<Emulator>"
  )]
  pub fn start<'env>(env: &'env Env, options: Option<Value>) -> Result<PromiseRaw<'env, Emulator>> {
    let config: emu::Config = match options {
      None | Some(Value::Null) => emu::Config::default(),
      Some(v) => serde_json::from_value(v)
        .map_err(|e| emulator_error(env, &format!("invalid emulator options: {e}"), true))?,
    };
    env.spawn_future_with_callback(
      async move { Ok(emu::Emulator::start(config).await) },
      |env, started| match started {
        Ok(inner) => Ok(Emulator {
          control: inner.control(),
          inner: Arc::new(inner),
        }),
        Err(e) => Err(emulator_error(
          env,
          &e.to_string(),
          matches!(e, emu::EmulatorError::Config(_)),
        )),
      },
    )
  }

  /// Parses command-line arguments (`--port 9191 --app-id my-app …`) into
  /// options for `start`; `null` when `--help` was given. Throws a TypeError
  /// naming the bad argument.
  #[napi(ts_return_type = "EmulatorOptions | null")]
  pub fn parse_args(env: Env, args: Vec<String>) -> Result<Value> {
    match emu::cli::parse_args(args) {
      Ok(Some(cli)) => to_js(&env, &cli.config),
      Ok(None) => Ok(Value::Null),
      Err(message) => Err(emulator_error(&env, &message, true)),
    }
  }

  /// The command line's help text.
  #[napi]
  pub fn usage() -> &'static str {
    emu::cli::USAGE
  }

  /// The line the command line prints once the emulator listens.
  #[napi]
  pub fn listening_line(&self) -> String {
    emu::cli::listening_line(&self.inner.base_url(), self.inner.app_id())
  }

  /// `http://127.0.0.1:<port>`: the base URL to give an App.
  #[napi(getter)]
  pub fn base_url(&self) -> String {
    self.inner.base_url()
  }

  /// The app id the emulator serves.
  #[napi(getter)]
  pub fn app_id(&self) -> String {
    self.inner.app_id().to_owned()
  }

  /// The port it listens on.
  #[napi(getter)]
  pub fn port(&self) -> u32 {
    self.inner.port().into()
  }

  /// Stops serving and closes every connection. Safe to call twice.
  #[napi(ts_return_type = "Promise<void>")]
  pub fn stop<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
    let inner = self.inner.clone();
    env.spawn_future(async move {
      inner.stop().await;
      Ok(())
    })
  }

  /// Creates a confirmed email/password user.
  #[napi(ts_return_type = "EmulatorUser")]
  pub fn create_user(&self, env: Env, email: String, password: String) -> Result<Value> {
    let user = control_result(&env, self.control.create_user(&email, &password))?;
    to_js(&env, &user)
  }

  /// Creates a server API key; its `key` is shown only here.
  #[napi(ts_return_type = "EmulatorServerApiKey")]
  pub fn create_server_api_key(&self, env: Env, name: String) -> Result<Value> {
    let key = control_result(&env, self.control.create_server_api_key(&name))?;
    to_js(&env, &key)
  }

  /// Makes the next matching request(s) fail as described; returns the fault's id.
  #[napi(ts_args_type = "fault: FaultSpec")]
  pub fn inject_fault(&self, env: Env, fault: Value) -> Result<String> {
    let spec: emu::FaultSpec = serde_json::from_value(fault)
      .map_err(|e| emulator_error(&env, &format!("invalid fault: {e}"), true))?;
    control_result(&env, self.control.inject_fault(spec))
  }

  /// Removes every fault.
  #[napi]
  pub fn clear_faults(&self) {
    self.control.clear_faults();
  }

  /// Makes every access token issued so far invalid (401 `InvalidSession`).
  #[napi]
  pub fn expire_access_tokens(&self) {
    self.control.expire_access_tokens();
  }

  /// Ends every session of a user: its refresh and access tokens stop working.
  #[napi]
  pub fn revoke_sessions(&self, env: Env, user_id: String) -> Result<()> {
    control_result(&env, self.control.revoke_sessions(&user_id))
  }

  /// Sets a user's custom data (the `user_data` claim of its next access tokens).
  #[napi(ts_args_type = "userId: string, data: Record<string, unknown>")]
  pub fn set_custom_data(&self, env: Env, user_id: String, data: Value) -> Result<()> {
    control_result(&env, self.control.set_custom_data(&user_id, data))
  }

  /// The requests served so far (oldest first), secrets redacted.
  #[napi(ts_return_type = "LoggedRequest[]")]
  pub fn requests(&self, env: Env) -> Result<Value> {
    to_js(&env, &self.control.requests())
  }

  /// Forgets the request log.
  #[napi]
  pub fn clear_requests(&self) {
    self.control.clear_requests();
  }

  /// The confirmation token pair "emailed" to an unconfirmed user, or `null`.
  #[napi(ts_return_type = "EmulatorTokenPair | null")]
  pub fn pending_confirmation(&self, env: Env, email: String) -> Result<Value> {
    to_js(&env, &self.control.pending_confirmation(&email))
  }

  /// The password reset token pair "emailed" to a user, or `null`.
  #[napi(ts_return_type = "EmulatorTokenPair | null")]
  pub fn pending_reset(&self, env: Env, email: String) -> Result<Value> {
    to_js(&env, &self.control.pending_reset(&email))
  }

  /// Forgets all users, keys, sessions, faults and the request log.
  #[napi]
  pub fn reset(&self) {
    self.control.reset();
  }
}
