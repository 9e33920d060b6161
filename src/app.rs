//! `App`: the entry point, holding configuration and users.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;
use realm_auth_client as client;

use crate::call::{self, Call, refused, run, run_void};
use crate::credentials::Credentials;
use crate::email_password_auth::EmailPasswordAuth;
use crate::js_error::throw;
use crate::listeners;
use crate::settle;
use crate::user::User;

fn device_info(env: &Env) -> client::DeviceInfo {
  let node = env
    .get_node_version()
    .map(|v| format!("v{}.{}.{}", v.major, v.minor, v.patch))
    .unwrap_or_default();
  // realm-core 14's names (`get_library_platform`, `get_library_cpu_arch`),
  // which it sends in place of Node's.
  let platform = match std::env::consts::OS {
    "linux" => "Linux",
    "macos" => "macOS",
    "windows" => "Windows",
    "android" => "Android",
    _ => "unknown",
  };
  let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
    .map(|s| s.trim().to_owned())
    .unwrap_or_default();
  let arch = match std::env::consts::ARCH {
    "x86_64" => "x86_64",
    "aarch64" => "arm64",
    "x86" => "x86",
    "arm" => "arm",
    _ => "unknown",
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
    let mut config = client::AppConfig::new(&call::string(value, "id")?, None, None)?;
    config.persistence = client::Persistence::Plain {
      base: working_directory()?,
    };
    config
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
    // realm v12 takes 0 for the default.
    let timeout =
      call::number(get("timeout")?, "timeout", 0.0, u32::MAX as f64)?.filter(|&ms| ms > 0.0);
    let retries = call::number(get("retries")?, "retries", 0.0, 10.0)?;
    let timeout = timeout.map(|ms| Duration::from_millis(ms as u64));
    let mut config = client::AppConfig::new(&id, base_url.as_deref(), timeout)?;
    if let Some(retries) = retries {
      config.retries = retries as u32;
    }
    config.persistence = persistence(get("baseFilePath")?, get("metadata")?)?;
    // Accepted as realm v12 accepts them; neither has anything to act on here.
    let multiplex = get("multiplexSessions")?;
    if !call::is_nullish(&multiplex) && !matches!(multiplex.get_type(), Ok(ValueType::Boolean)) {
      return Err(refused("Expected 'multiplexSessions' to be a boolean"));
    }
    if !call::is_nullish(&get("app")?) {
      // realm v12's warning, through the logger (its default writes it to the console).
      client::log::warn(
        "The \"app\" field in the App.Configuration is no longer used by Atlas Device Sync. It will \
         be removed in future SDK releases and should not be used.",
      );
    }
    let fetch = get("fetch")?;
    if !call::is_nullish(&fetch) {
      if !matches!(fetch.get_type(), Ok(ValueType::Function)) {
        return Err(refused("Expected 'fetch' to be a function"));
      }
      config.fetch = Some(crate::fetch::custom_fetch(env, fetch).map_err(|e| {
        client::Error::new(
          client::ErrorCode::Internal,
          format!("could not use the fetch function: {}", e.reason),
        )
      })?);
    }
    config
  };
  config.device = device_info(env);
  Ok(config)
}

fn working_directory() -> client::Result<PathBuf> {
  std::env::current_dir().map_err(|e| {
    client::Error::new(
      client::ErrorCode::FileOperationFailed,
      format!("Could not read the working directory for the user store: {e}"),
    )
  })
}

/// `baseFilePath` and `metadata: { mode, encryptionKey }`, as realm v12 reads them.
fn persistence(base_file_path: Unknown, metadata: Unknown) -> client::Result<client::Persistence> {
  let base = if call::is_nullish(&base_file_path) {
    working_directory()?
  } else {
    let path = call::string(base_file_path, "baseFilePath")?;
    if path.is_empty() {
      working_directory()?
    } else {
      PathBuf::from(path)
    }
  };
  if call::is_nullish(&metadata) {
    return Ok(client::Persistence::Plain { base });
  }
  let metadata = call::object(metadata, "metadata")?;
  let mode: Unknown = metadata
    .get_named_property("mode")
    .map_err(|_| refused("Could not read 'metadata.mode'"))?;
  let mode = call::string(mode, "metadata.mode")?;
  Ok(match mode.as_str() {
    "noEncryption" => client::Persistence::Plain { base },
    "inMemory" | "noMetadata" => client::Persistence::InMemory,
    "encryption" => {
      let key: Unknown = metadata
        .get_named_property("encryptionKey")
        .map_err(|_| refused("Could not read 'metadata.encryptionKey'"))?;
      if call::is_nullish(&key) {
        // realm v12's words.
        return Err(refused("encryptionKey is required"));
      }
      let bytes = call::bytes(key, "metadata.encryptionKey")?;
      let key: Box<[u8; 64]> = bytes
        .into_boxed_slice()
        .try_into()
        .map_err(|b: Box<[u8]>| {
          refused(format!(
            "Expected 'metadata.encryptionKey' to be 64 bytes, got {}",
            b.len()
          ))
        })?;
      client::Persistence::Encrypted { base, key }
    }
    other => {
      return Err(refused(format!(
        "Expected 'metadata.mode' to be a MetadataMode ('noEncryption', 'encryption' or \
         'inMemory'), got '{other}'"
      )));
    }
  })
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

/// realm v12's `MetadataMode`: how an App keeps its users between processes.
#[napi(string_enum)]
pub enum MetadataMode {
  /// Users kept in a plain file under `<baseFilePath>/mongodb-realm/<app id>/` (the default).
  #[napi(value = "noEncryption")]
  NoEncryption,
  /// Users kept in a file encrypted with `metadata.encryptionKey` (64 bytes).
  #[napi(value = "encryption")]
  Encryption,
  /// Users are not kept.
  /// @deprecated As in realm v12: use `InMemory`.
  #[napi(value = "noMetadata")]
  NoMetadata,
  /// Users are not kept: nothing is written.
  #[napi(value = "inMemory")]
  InMemory,
}

thread_local! {
  /// `App.get`'s Apps by environment (`napi_env`) and id: weak references, as
  /// realm v12 keeps them.
  static BY_ID: RefCell<HashMap<(usize, String), sys::napi_ref>> = RefCell::new(HashMap::new());
}

/// An App Services application. Requests go to the host its location request
/// names, requested once, before the first call that needs it. Apps made with
/// the same id and base URL share their users, as in realm v12.
#[napi(custom_finalize)]
pub struct App {
  inner: client::App,
  /// This object's listener list (see `listeners`).
  owner: u64,
}

impl App {
  fn call(&self, env: &Env, options: Option<Unknown>) -> Call {
    Call::new(env, self.inner.config().timeout, options)
  }

  /// The `User` argument of a synchronous method.
  fn user_arg(env: &Env, user: Unknown) -> client::Result<client::User> {
    call::instance::<User>(env, user, "user", "User").map(|u| u.inner.clone())
  }
}

impl ObjectFinalize for App {
  fn finalize(self, env: Env) -> Result<()> {
    // Runs inside Node's garbage collector callback: a panic must not unwind there.
    let owner = self.owner;
    let _ = std::panic::catch_unwind(move || listeners::remove_app_listeners(&env, owner));
    settle::drop_guarded(self);
    Ok(())
  }
}

#[napi]
impl App {
  /// The `[name, value]` pairs `util.inspect` shows (no token): installed at load as the
  /// `util.inspect.custom` method.
  #[napi(catch_unwind, js_name = "inspectFields", skip_typescript)]
  pub fn inspect_fields(&self) -> serde_json::Value {
    serde_json::json!([
      ["id", self.inner.config().id],
      ["baseUrl", self.inner.base_url()],
      [
        "currentUser",
        self.inner.current_user().map(|u| u.id().to_owned())
      ],
      ["users", self.inner.all_users().len()]
    ])
  }

  /// `new App(id)` or `new App({ id, baseUrl?, timeout?, retries?, baseFilePath?, metadata? })`.
  /// Throws a `TypeError` for a bad argument, and an `Error` when the user
  /// store cannot be read (a wrong encryption key, a store of a newer release).
  #[napi(
    catch_unwind,
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
      owner: listeners::next_owner(),
    })
  }

  /// The App made by an earlier `App.get(id)` (while it is referenced), else a
  /// new `App(id)`, as realm v12's `App.get`.
  #[napi(catch_unwind, ts_args_type = "id: string", ts_return_type = "App")]
  pub fn get<'env>(env: &'env Env, id: Unknown) -> Result<Unknown<'env>> {
    let id = (env.raw() as usize, throw(env, call::string(id, "id"))?);
    let cached = BY_ID.with(|m| m.borrow().get(&id).copied());
    if let Some(reference) = cached {
      let mut value = std::ptr::null_mut();
      unsafe { sys::napi_get_reference_value(env.raw(), reference, &mut value) };
      if !value.is_null() {
        return Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), value) });
      }
      BY_ID.with(|m| m.borrow_mut().remove(&id));
      unsafe { sys::napi_delete_reference(env.raw(), reference) };
    }
    let app = App::new(*env, env.create_string(&id.1)?.to_unknown())?;
    let value = app.into_instance(env)?.to_unknown();
    let mut reference = std::ptr::null_mut();
    napi::check_status!(unsafe {
      sys::napi_create_reference(env.raw(), value.raw(), 0, &mut reference)
    })?;
    BY_ID.with(|m| m.borrow_mut().insert(id, reference));
    Ok(value)
  }

  /// The same as `App.get(id)`.
  /// @deprecated As in realm v12: use `App.get`.
  #[napi(catch_unwind, ts_args_type = "id: string", ts_return_type = "App")]
  pub fn get_app<'env>(env: &'env Env, id: Unknown) -> Result<Unknown<'env>> {
    App::get(env, id)
  }

  /// The App id.
  #[napi(catch_unwind, getter)]
  pub fn id(&self) -> String {
    self.inner.config().id.clone()
  }

  /// The base URL requests start from (the location request goes there). In
  /// realm v12 this is behind `import "realm/experimental/base-url"`; here it
  /// is always readable.
  #[napi(catch_unwind, getter)]
  pub fn base_url(&self) -> String {
    self.inner.base_url()
  }

  /// Requests the location at `newUrl` (the default base URL for `null` or
  /// `""`) and, if that succeeds, sends every later request of this App there;
  /// on failure nothing changes. As realm v12's experimental `updateBaseUrl`.
  #[napi(
    catch_unwind,
    ts_args_type = "newUrl: string | null, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn update_base_url<'env>(
    &self,
    env: &'env Env,
    new_url: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let app = self.inner.clone();
    let url = if call::is_nullish(&new_url) {
      Ok(None)
    } else {
      call::string(new_url, "newUrl").map(Some)
    };
    run_void(env, self.call(env, options), url, move |url| async move {
      app.update_base_url(url.as_deref()).await
    })
  }

  /// The current user: the last one logged in or switched to while it is
  /// logged in, else the first logged-in user, else `null`. Each read returns
  /// a new `User` object for the same user, as in realm v12.
  #[napi(
    catch_unwind,
    getter,
    ts_return_type = "User<FunctionsFactoryType, CustomDataType> | null"
  )]
  pub fn current_user(&self) -> Option<User> {
    self.inner.current_user().map(User::new)
  }

  /// Every user that is not removed, logged in or out, by id, in realm v12's
  /// order (of first login; by id when the App keeps users in memory only).
  #[napi(
    catch_unwind,
    getter,
    ts_return_type = "Readonly<Record<string, User<FunctionsFactoryType, CustomDataType>>>"
  )]
  pub fn all_users<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
    let mut out = Object::new(env)?;
    for user in self.inner.all_users() {
      let id = user.id().to_owned();
      out.set_named_property(&id, User::new(user))?;
    }
    Ok(out)
  }

  /// The email/password provider's account functions.
  #[napi(catch_unwind, getter)]
  pub fn email_password_auth(&self) -> EmailPasswordAuth {
    EmailPasswordAuth::new(self.inner.email_password())
  }

  /// Logs in and makes the user current. A boolean in place of the options
  /// (realm-web's `fetchProfile`) is accepted and ignored: the profile is always read.
  #[napi(
    catch_unwind,
    ts_args_type = "credentials: Credentials, options?: CallOptions | boolean",
    ts_return_type = "Promise<User<FunctionsFactoryType, CustomDataType>>"
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
  #[napi(catch_unwind, ts_args_type = "user: AnyUser")]
  pub fn switch_user(&self, env: Env, user: Unknown) -> Result<()> {
    let switched = App::user_arg(&env, user).and_then(|u| self.inner.switch_user(&u));
    listeners::flush(&env);
    throw(&env, switched)
  }

  /// Logs the user out (if logged in) and removes it from the App. The user is
  /// removed here before this returns; the promise tells how ending its
  /// session on the server went.
  #[napi(
    catch_unwind,
    ts_args_type = "user: AnyUser, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn remove_user<'env>(
    &self,
    env: &'env Env,
    user: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let app = self.inner.clone();
    let call = self.call(env, options);
    // Refused options change nothing.
    let session = match App::user_arg(env, user) {
      Ok(u) if call.is_accepted() => self.inner.remove_user_locally(&u),
      other => other.map(|_| None),
    };
    listeners::flush(env);
    run_void(env, call, session, move |session| async move {
      match session {
        Some(refresh) => app.end_session(refresh).await,
        None => Ok(()),
      }
    })
  }

  /// Deletes the user on the server, then removes it from the App.
  #[napi(
    catch_unwind,
    ts_args_type = "user: AnyUser, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn delete_user<'env>(
    &self,
    env: &'env Env,
    user: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let app = self.inner.clone();
    let user = App::user_arg(env, user).and_then(|u| self.inner.check_deletable(&u).map(|()| u));
    run_void(env, self.call(env, options), user, move |user| async move {
      app.delete_user(&user).await
    })
  }

  /// Calls `callback` after every change of this App's users: a login (or a
  /// reused anonymous user), a switch, a logout, a removal or a deletion.
  /// Throws if `callback` was already added.
  #[napi(catch_unwind, ts_args_type = "callback: AppChangeCallback")]
  pub fn add_listener(&self, env: Env, callback: Unknown) -> Result<()> {
    listeners::add_app_listener(&env, &self.inner, self.owner, callback)
  }

  /// Removes a callback added with `addListener` (nothing if it was not added).
  #[napi(catch_unwind, ts_args_type = "callback: AppChangeCallback")]
  pub fn remove_listener(&self, env: Env, callback: Unknown) {
    listeners::remove_app_listener(&env, self.owner, callback)
  }

  /// Removes every callback added with `addListener` to this App object.
  #[napi(catch_unwind)]
  pub fn remove_all_listeners(&self, env: Env) {
    listeners::remove_app_listeners(&env, self.owner)
  }
}
