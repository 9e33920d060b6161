//! `App`: the entry point, holding configuration and users.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_client as client;

use crate::call::{self, Call, run, run_void};
use crate::credentials::Credentials;
use crate::email_password_auth::EmailPasswordAuth;
use crate::js_error::throw;
use crate::user::User;

fn device_info(env: &Env) -> client::DeviceInfo {
  let node = env
    .get_node_version()
    .map(|v| format!("v{}.{}.{}", v.major, v.minor, v.patch))
    .unwrap_or_default();
  let platform = match std::env::consts::OS {
    "linux" => "Linux",
    "macos" => "Darwin",
    "windows" => "Windows_NT",
    other => other,
  };
  let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
    .map(|s| s.trim().to_owned())
    .unwrap_or_default();
  let arch = match std::env::consts::ARCH {
    "x86_64" => "x64",
    "aarch64" => "arm64",
    other => other,
  };
  client::DeviceInfo {
    platform: platform.to_owned(),
    platform_version: release,
    cpu_arch: arch.to_owned(),
    framework_name: "Node.js".to_owned(),
    framework_version: node,
    sdk_version: env!("CARGO_PKG_VERSION").to_owned(),
  }
}

/// Reads `new App(...)`'s argument into a checked configuration.
fn configuration(env: &Env, value: Unknown) -> client::Result<client::AppConfig> {
  let mut config = if matches!(value.get_type(), Ok(ValueType::String)) {
    client::AppConfig::new(&call::string(value, "id")?, None, None)?
  } else {
    let options = call::object(value, "configuration")
      .map_err(|_| call::refused("Expected an App id (string) or a configuration object"))?;
    let get = |key: &str| {
      options
        .get_named_property::<Unknown>(key)
        .map_err(|_| call::refused(format!("Could not read '{key}'")))
    };
    let id = call::string(get("id")?, "id")?;
    let base_url = get("baseUrl")?;
    let base_url = if call::is_nullish(&base_url) {
      None
    } else {
      Some(call::string(base_url, "baseUrl")?)
    };
    let timeout = call::number(get("timeout")?, "timeout", 1.0, u32::MAX as f64)?;
    let retries = call::number(get("retries")?, "retries", 0.0, 10.0)?;
    let timeout = timeout.map(|ms| Duration::from_millis(ms as u64));
    let mut config = client::AppConfig::new(&id, base_url.as_deref(), timeout)?;
    if let Some(retries) = retries {
      config.retries = retries as u32;
    }
    config
  };
  config.device = device_info(env);
  Ok(config)
}

/// Warns once per process that an App sends secrets over plain HTTP to a
/// host other than this machine. Only https silences it.
fn warn_insecure(env: &Env, base_url: &str) {
  static WARNED: AtomicBool = AtomicBool::new(false);
  if WARNED.swap(true, Ordering::Relaxed) {
    return;
  }
  let message = format!(
    "realm-auth-native: the App's baseUrl {base_url} is plain http:// to another host: tokens, \
     passwords and API keys will cross the network unencrypted. Use https://."
  );
  let emit = || -> Result<()> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    let emit_warning: Function<FnArgs<(String, &str)>, Unknown> =
      process.get_named_property("emitWarning")?;
    emit_warning.apply(
      process,
      FnArgs::from((message.clone(), "InsecureConnectionWarning")),
    )?;
    Ok(())
  };
  if emit().is_err() {
    eprintln!("{message}");
  }
}

/// An App Services application. Requests go to the host its location request
/// names, requested once, before the first call that needs it.
#[napi]
pub struct App {
  inner: client::App,
}

impl App {
  fn call(&self, env: &Env, options: Option<Unknown>) -> Call {
    Call::new(env, self.inner.config().timeout, options)
  }
}

#[napi]
impl App {
  /// `new App(id)` or `new App({ id, baseUrl?, timeout?, retries? })`. Throws a
  /// `TypeError` for a bad argument.
  #[napi(
    constructor,
    ts_args_type = "idOrConfiguration: string | AppConfiguration"
  )]
  pub fn new(env: Env, id_or_configuration: Unknown) -> Result<App> {
    let config = throw(&env, configuration(&env, id_or_configuration))?;
    if config.is_insecure() {
      warn_insecure(&env, &config.base_url);
    }
    Ok(App {
      inner: throw(&env, client::App::new(config))?,
    })
  }

  /// The App id.
  #[napi(getter)]
  pub fn id(&self) -> String {
    self.inner.config().id.clone()
  }

  /// The base URL requests start from (the location request goes there).
  #[napi(getter)]
  pub fn base_url(&self) -> String {
    self.inner.config().base_url.clone()
  }

  /// The current user if logged in, else the most recently used logged-in user, else `null`.
  /// Each read returns a new `User` object for the same user, as in realm v12.
  #[napi(getter)]
  pub fn current_user(&self) -> Option<User> {
    self.inner.current_user().map(User::new)
  }

  /// Every user that is not removed, logged in or out, by id (most recently used first).
  #[napi(getter, ts_return_type = "Record<string, User>")]
  pub fn all_users<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
    let mut out = Object::new(env)?;
    for user in self.inner.all_users() {
      let id = user.id().to_owned();
      out.set_named_property(&id, User::new(user))?;
    }
    Ok(out)
  }

  /// The email/password provider's account functions.
  #[napi(getter)]
  pub fn email_password_auth(&self) -> EmailPasswordAuth {
    EmailPasswordAuth::new(self.inner.email_password())
  }

  /// Logs in and makes the user current. A boolean in place of the options
  /// (realm-web's `fetchProfile`) is accepted and ignored: the profile is always read.
  #[napi(
    ts_args_type = "credentials: Credentials, options?: CallOptions | boolean",
    ts_return_type = "Promise<User>"
  )]
  pub fn log_in<'env>(
    &self,
    env: &'env Env,
    credentials: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, User>> {
    let app = self.inner.clone();
    let credentials = call::instance::<Credentials>(env, credentials, "credentials", "Credentials")
      .map(|c| c.inner.clone());
    let options = options.filter(|o| !matches!(o.get_type(), Ok(ValueType::Boolean)));
    run(
      env,
      self.call(env, options),
      credentials,
      move |credentials| async move { app.log_in(&credentials).await },
      |_, user| Ok(User::new(user)),
    )
  }

  /// Makes a logged-in user of this App the current user. Throws if the user is
  /// logged out, removed or from another App.
  #[napi(ts_args_type = "user: User")]
  pub fn switch_user(&self, env: Env, user: Unknown) -> Result<()> {
    let user = call::instance::<User>(&env, user, "user", "User");
    throw(&env, user.and_then(|u| self.inner.switch_user(&u.inner)))
  }

  /// Logs the user out (if logged in) and removes it from the App.
  #[napi(
    ts_args_type = "user: User, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn remove_user<'env>(
    &self,
    env: &'env Env,
    user: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let app = self.inner.clone();
    let user = call::instance::<User>(env, user, "user", "User").map(|u| u.inner.clone());
    run_void(env, self.call(env, options), user, move |user| async move {
      app.remove_user(&user).await
    })
  }

  /// Deletes the user on the server, then removes it from the App.
  #[napi(
    ts_args_type = "user: User, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn delete_user<'env>(
    &self,
    env: &'env Env,
    user: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let app = self.inner.clone();
    let user = call::instance::<User>(env, user, "user", "User").map(|u| u.inner.clone());
    run_void(env, self.call(env, options), user, move |user| async move {
      app.delete_user(&user).await
    })
  }
}
