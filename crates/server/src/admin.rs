//! Admin commands of the `realm-auth-server` binary (`apps`, `users`, `server-keys`,
//! `sessions`): they work directly on the server's database (SQLite or PostgreSQL), through the
//! same rules (`state.rs`) and transactions as the HTTP routes, so no server needs to run and a
//! running one sees every change at once (the store is the only source of truth).

use std::io::{Read, Write};
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::cli::{POSTGRES_URL_ENV, error_json};
use crate::ids::now_secs;
use crate::state::{self, ApiError, Ident, UserKind};
use crate::store::{Store, StoreConfig};
use crate::{Config, PasswordHashConfig, passwords, postgres, sqlite};

/// Where `users add` reads the password when `--password-stdin` is not given.
pub const PASSWORD_ENV: &str = "REALM_AUTH_PASSWORD";

/// Exit code: the command failed (database unreachable, a conflict such as a taken email).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code: bad usage (unknown command or option, missing argument, invalid input).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the app, user or key does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;

/// One admin command: its words, synopsis and help line.
struct Command {
  group: &'static str,
  name: &'static str,
  /// The positional argument's name, if it takes one.
  arg: Option<&'static str>,
  /// Whether it works on one app (`--app`).
  app: bool,
  /// Options of its own (value options end in `=`).
  options: &'static [&'static str],
  synopsis: &'static str,
  about: &'static str,
}

const COMMANDS: &[Command] = &[
  Command {
    group: "apps",
    name: "add",
    arg: Some("<app-id>"),
    app: false,
    options: &[],
    synopsis: "apps add <app-id>",
    about: "create an app (its row and token signing secret), as a server's start does; \
            creates the SQLite file if missing",
  },
  Command {
    group: "apps",
    name: "list",
    arg: None,
    app: false,
    options: &[],
    synopsis: "apps list",
    about: "list the apps with their user counts",
  },
  Command {
    group: "users",
    name: "add",
    arg: None,
    app: true,
    options: &["--email=", "--password-stdin", "--password-iterations="],
    synopsis: "users add --app <id> --email <e> [--password-stdin] [--password-iterations <n>]",
    about: "create a confirmed email/password user; the password is read from standard input \
            with --password-stdin, else from REALM_AUTH_PASSWORD (never from the command line, \
            where `ps` shows it); hashed as `serve` would for the config (its passwordHash; \
            argon2id by default), or with PBKDF2 and --password-iterations <n>",
  },
  Command {
    group: "users",
    name: "list",
    arg: None,
    app: true,
    options: &[],
    synopsis: "users list --app <id>",
    about: "list the users, oldest first",
  },
  Command {
    group: "users",
    name: "disable",
    arg: Some("<user-id>"),
    app: true,
    options: &[],
    synopsis: "users disable --app <id> <user-id>",
    about: "refuse the user's logins (every provider), refreshes and access tokens \
            (401 UserDisabled), and end its sessions",
  },
  Command {
    group: "users",
    name: "enable",
    arg: Some("<user-id>"),
    app: true,
    options: &[],
    synopsis: "users enable --app <id> <user-id>",
    about: "allow a disabled user's logins again (its ended sessions stay ended)",
  },
  Command {
    group: "users",
    name: "delete",
    arg: Some("<user-id>"),
    app: true,
    options: &[],
    synopsis: "users delete --app <id> <user-id>",
    about: "delete the user with its identities, email account, API keys and sessions",
  },
  Command {
    group: "server-keys",
    name: "create",
    arg: None,
    app: true,
    options: &["--name="],
    synopsis: "server-keys create --app <id> --name <n>",
    about: "create a server API key (and its server user); prints the key's secret, once",
  },
  Command {
    group: "server-keys",
    name: "list",
    arg: None,
    app: true,
    options: &[],
    synopsis: "server-keys list --app <id>",
    about: "list the server API keys (never their secrets)",
  },
  Command {
    group: "server-keys",
    name: "delete",
    arg: Some("<key-id>"),
    app: true,
    options: &[],
    synopsis: "server-keys delete --app <id> <key-id>",
    about: "delete a server API key with its server user and sessions",
  },
  Command {
    group: "sessions",
    name: "revoke",
    arg: Some("<user-id>"),
    app: true,
    options: &[],
    synopsis: "sessions revoke --app <id> <user-id>",
    about: "end every session of a user (its refresh and access tokens stop working)",
  },
];

const COMMON_HELP: &str = "\
Store (exactly one; admin commands need --sqlite or --postgres, never the memory store):
  --sqlite <file>        the server's SQLite database
  --postgres <url>       the server's PostgreSQL database (postgres://user@host:port/db; or set
                         REALM_AUTH_SERVER_POSTGRES_URL, which `ps` does not show)
  --config <file.json>   the server's JSON config, read as `serve` reads it: its `store`, its
                         `passwordHash` (or legacy `passwordIterations`: PBKDF2) for `users add`,
                         and its `appId` as the default --app

Options:
  --app <id>             the app to work on (default: the config's appId)
  --json                 print the result, or the failure (on standard error), as JSON
  -h, --help             print help (also after a command: `users add --help`)

Exit codes: 0 ok, 1 failure (database unreachable, email or key name taken), 2 bad usage,
3 not found (no such app, user or key; no SQLite file).
";

/// The help text of the admin commands.
pub fn usage() -> String {
  let mut out = String::from(
    "Usage: realm-auth-server <command> [options]\n\n\
     Admin commands work directly on the server's database; no server needs to run, and a \
     running\none sees every change at once.\n\n",
  );
  for c in COMMANDS {
    out.push_str(&format!("  {}\n      {}\n", c.synopsis, wrap(c.about)));
  }
  out.push('\n');
  out.push_str(COMMON_HELP);
  out
}

/// What a usage error shows: the synopses and where the full help is.
fn short_usage(commands: &mut dyn Iterator<Item = &Command>, help: &str) -> String {
  let mut out = String::from("Usage:\n");
  for c in commands {
    out.push_str(&format!("  realm-auth-server {} [store]\n", c.synopsis));
  }
  out.push_str(&format!("Run `realm-auth-server {help}` for details.\n"));
  out
}

fn command_usage(c: &Command) -> String {
  format!(
    "Usage: realm-auth-server {} [store]\n\n  {}\n\n{COMMON_HELP}",
    c.synopsis,
    wrap(c.about).replace("\n      ", "\n  ")
  )
}

/// Wraps a help line at about 90 columns, indented under its synopsis.
fn wrap(text: &str) -> String {
  let mut out = String::new();
  let mut width = 0;
  for word in text.split_whitespace() {
    if width > 0 && width + word.len() > 84 {
      out.push_str("\n      ");
      width = 0;
    } else if width > 0 {
      out.push(' ');
      width += 1;
    }
    out.push_str(word);
    width += word.len();
  }
  out
}

/// Why a command failed: its exit code, message and, for bad usage, the help to show.
struct Failure {
  code: u8,
  message: String,
  usage: Option<String>,
}

impl Failure {
  fn usage(message: impl Into<String>, usage: String) -> Failure {
    Failure {
      code: EXIT_USAGE,
      message: message.into(),
      usage: Some(usage),
    }
  }
  fn not_found(message: impl Into<String>) -> Failure {
    Failure {
      code: EXIT_NOT_FOUND,
      message: message.into(),
      usage: None,
    }
  }
  fn failed(message: impl Into<String>) -> Failure {
    Failure {
      code: EXIT_FAILURE,
      message: message.into(),
      usage: None,
    }
  }
}

impl From<ApiError> for Failure {
  fn from(e: ApiError) -> Failure {
    let code = match e.status {
      400 => EXIT_USAGE,
      404 => EXIT_NOT_FOUND,
      _ => EXIT_FAILURE,
    };
    Failure {
      code,
      message: e.message,
      usage: None,
    }
  }
}

/// What a command prints on success.
enum Outcome {
  Help(String),
  Done { human: String, json: Value },
}

/// Runs an admin command (`args` without the program name, starting with `apps`, `users`,
/// `server-keys` or `sessions`) and returns its exit code: 0 ok, 1 failure, 2 bad usage,
/// 3 not found. Results go to `stdout`, failures to `stderr` (as JSON with `--json`).
pub fn run(
  args: Vec<String>,
  stdin: &mut dyn Read,
  stdout: &mut dyn Write,
  stderr: &mut dyn Write,
) -> u8 {
  let env = |name: &str| std::env::var(name).ok();
  // Looked for before parsing, so that a bad argument is reported as JSON too.
  let json = args.iter().any(|a| a == "--json");
  let result = execute(args, &env, stdin);
  // A closed stdout (`| head`) is not worth a panic; the exit code still says what happened.
  match result {
    Ok(Outcome::Help(text)) => {
      let _ = stdout.write_all(text.as_bytes());
      0
    }
    Ok(Outcome::Done { human, json: value }) => {
      let text = if json { format!("{value}\n") } else { human };
      let _ = stdout.write_all(text.as_bytes());
      0
    }
    Err(f) => {
      let _ = if json {
        writeln!(stderr, "{}", error_json(None, &f.message))
      } else if let Some(usage) = f.usage {
        write!(stderr, "realm-auth-server: {}\n{usage}", f.message)
      } else {
        writeln!(stderr, "realm-auth-server: {}", f.message)
      };
      f.code
    }
  }
}

/// The parsed command line.
#[derive(Default)]
struct Parsed {
  sqlite: Option<String>,
  postgres: Option<String>,
  config: Option<String>,
  app: Option<String>,
  email: Option<String>,
  name: Option<String>,
  iterations: Option<String>,
  password_stdin: bool,
  arg: Option<String>,
}

fn execute(
  args: Vec<String>,
  env: &dyn Fn(&str) -> Option<String>,
  stdin: &mut dyn Read,
) -> Result<Outcome, Failure> {
  let mut args = args.into_iter().peekable();
  let group = args.next().unwrap_or_default();
  if !COMMANDS.iter().any(|c| c.group == group) {
    return Err(Failure::usage(
      format!("unknown command '{group}'"),
      short_usage(&mut COMMANDS.iter(), "users --help"),
    ));
  }
  let name = match args.next() {
    // Every group shows the whole list: it is short, and one help page shows them all.
    Some(h) if h == "-h" || h == "--help" => return Ok(Outcome::Help(usage())),
    Some(name) if !name.starts_with('-') => name,
    _ => {
      return Err(Failure::usage(
        "missing command",
        short_usage(
          &mut COMMANDS.iter().filter(|c| c.group == group),
          &format!("{group} --help"),
        ),
      ));
    }
  };
  let Some(cmd) = COMMANDS.iter().find(|c| c.group == group && c.name == name) else {
    return Err(Failure::usage(
      format!("unknown command '{group} {name}'"),
      short_usage(
        &mut COMMANDS.iter().filter(|c| c.group == group),
        &format!("{group} --help"),
      ),
    ));
  };
  let help = format!("{group} {name} --help");
  let bad =
    |message: String| Failure::usage(message, short_usage(&mut std::iter::once(cmd), &help));
  let mut p = Parsed::default();
  while let Some(arg) = args.next() {
    // Accept both `--flag value` and `--flag=value`.
    let (flag, inline) = match arg.split_once('=') {
      Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
      _ => (arg.clone(), None),
    };
    let own = |option: &str| cmd.options.contains(&option);
    // A following option is not a value: `--app --sqlite f` lacks the app, it does not name
    // an app "--sqlite".
    let mut value = || {
      inline
        .clone()
        .or_else(|| args.next_if(|a| !a.starts_with("--")))
        .ok_or_else(|| bad(format!("{flag} needs a value")))
    };
    let slot = match flag.as_str() {
      "-h" | "--help" => return Ok(Outcome::Help(command_usage(cmd))),
      "--json" if inline.is_none() => continue,
      "--password-stdin" if inline.is_none() && own("--password-stdin") => {
        p.password_stdin = true;
        continue;
      }
      "--password" if cmd.group == "users" && cmd.name == "add" => {
        return Err(bad(
          "--password is refused: a password on the command line is visible to every user \
           (`ps`, shell history); use --password-stdin or REALM_AUTH_PASSWORD"
            .into(),
        ));
      }
      "--sqlite" => &mut p.sqlite,
      "--postgres" => &mut p.postgres,
      "--config" => &mut p.config,
      "--app" if cmd.app => &mut p.app,
      "--email" if own("--email=") => &mut p.email,
      "--name" if own("--name=") => &mut p.name,
      "--password-iterations" if own("--password-iterations=") => &mut p.iterations,
      f if f.starts_with('-') && f.len() > 1 => {
        return Err(bad(format!("unknown option '{f}' for '{group} {name}'")));
      }
      _ => {
        if cmd.arg.is_none() || p.arg.is_some() {
          return Err(bad(format!("unexpected argument '{arg}'")));
        }
        p.arg = Some(arg);
        continue;
      }
    };
    if slot.is_some() {
      return Err(bad(format!("{flag} given twice")));
    }
    *slot = Some(value()?);
  }
  if let Some(arg) = cmd.arg
    && p.arg.is_none()
  {
    return Err(bad(format!("missing {arg}")));
  }
  let (store_config, config) = store_of(&p, env).map_err(bad)?;
  let app = if cmd.app {
    match (&p.app, &config) {
      (Some(app), _) => Some(app.clone()),
      (None, Some(config)) => Some(config.app_id.clone()),
      (None, None) => return Err(bad("--app <id> is required (or --config)".into())),
    }
  } else {
    None
  };
  // `users add` validates its input before it opens anything.
  let mut new_user = None;
  if cmd.group == "users" && cmd.name == "add" {
    let email = p.email.clone().unwrap_or_default();
    if email.trim().is_empty() {
      return Err(bad("--email <e> is required".into()));
    }
    // The hash `serve` would store for this config: its `passwordHash` (argon2id by default),
    // or PBKDF2 when iterations are given.
    let settings = match &p.iterations {
      Some(n) => PasswordHashConfig::Pbkdf2 {
        iterations: Some(n.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
          bad(format!(
            "--password-iterations: '{n}' is not a positive number"
          ))
        })?),
      },
      None => {
        let mut serve = config.clone().unwrap_or_default();
        serve.control_api = false;
        passwords::effective(&serve)
      }
    };
    // What `serve` checks at start: bad argon2id parameters are bad usage, not a panic.
    let mut check = config.clone().unwrap_or_default();
    check.control_api = false;
    check.password_hash = Some(settings.clone());
    passwords::validate(&check).map_err(bad)?;
    let password = read_password(p.password_stdin, env, stdin).map_err(bad)?;
    state::validate_password(&password).map_err(|e| bad(e.message))?;
    new_user = Some((email, password, settings));
  }
  if cmd.group == "server-keys" && cmd.name == "create" {
    let name = p.name.as_deref().unwrap_or_default();
    if name.is_empty() {
      return Err(bad("--name <n> is required".into()));
    }
    state::validate_key_name(name).map_err(|e| bad(e.message))?;
  }

  let creating = cmd.group == "apps" && cmd.name == "add";
  let store = open(&store_config, creating)?;
  if let Some(app) = &app {
    check_app(&store, app)?;
  }
  let app = app.as_deref().unwrap_or_default();
  let arg = p.arg.as_deref().unwrap_or_default();
  match (cmd.group, cmd.name) {
    ("apps", "add") => apps_add(&store, arg),
    ("apps", "list") => apps_list(&store),
    ("users", "add") => {
      let (email, password, settings) = new_user.expect("validated above");
      users_add(&store, app, &email, &password, &settings)
    }
    ("users", "list") => users_list(&store, app),
    ("users", "disable") => users_set_disabled(&store, app, arg, true),
    ("users", "enable") => users_set_disabled(&store, app, arg, false),
    ("users", "delete") => users_delete(&store, app, arg),
    ("server-keys", "create") => keys_create(&store, app, p.name.as_deref().unwrap_or_default()),
    ("server-keys", "list") => keys_list(&store, app),
    ("server-keys", "delete") => keys_delete(&store, app, arg),
    ("sessions", "revoke") => sessions_revoke(&store, app, arg),
    _ => unreachable!("every command in COMMANDS is dispatched"),
  }
}

/// The store to open and, with `--config`, the config it came from.
fn store_of(
  p: &Parsed,
  env: &dyn Fn(&str) -> Option<String>,
) -> Result<(StoreConfig, Option<Config>), String> {
  let given = [&p.sqlite, &p.postgres, &p.config]
    .iter()
    .filter(|o| o.is_some())
    .count();
  if given > 1 {
    return Err("--sqlite, --postgres and --config exclude each other".into());
  }
  if let Some(path) = &p.sqlite {
    return Ok((StoreConfig::Sqlite { path: path.into() }, None));
  }
  if let Some(path) = &p.config {
    // Read exactly as `serve` reads it: unknown keys refused, a legacy `passwordIterations`
    // file hashed with PBKDF2.
    let config = crate::cli::read_config_file(path)?;
    if config.store == StoreConfig::Memory {
      return Err(format!(
        "admin commands need --sqlite or --postgres ({path} names the memory store)"
      ));
    }
    return Ok((config.store.clone(), Some(config)));
  }
  // The environment's URL counts only when no store is named on the command line.
  match p.postgres.clone().or_else(|| env(POSTGRES_URL_ENV)) {
    Some(url) if !url.is_empty() => Ok((StoreConfig::Postgres { url, schema: None }, None)),
    _ => Err("admin commands need --sqlite or --postgres (or --config)".into()),
  }
}

/// The new user's password: standard input with `--password-stdin` (one trailing newline
/// dropped), else the environment.
fn read_password(
  from_stdin: bool,
  env: &dyn Fn(&str) -> Option<String>,
  stdin: &mut dyn Read,
) -> Result<String, String> {
  if !from_stdin {
    return env(PASSWORD_ENV)
      .filter(|p| !p.is_empty())
      .ok_or_else(|| format!("no password: pass --password-stdin or set {PASSWORD_ENV}"));
  }
  let mut text = String::new();
  stdin
    .read_to_string(&mut text)
    .map_err(|e| format!("cannot read the password from standard input: {e}"))?;
  let text = text
    .strip_suffix('\n')
    .map(|t| t.strip_suffix('\r').unwrap_or(t))
    .unwrap_or(&text);
  Ok(text.to_string())
}

/// Opens the store. A missing SQLite file is created only by `apps add`: a mistyped path must
/// not leave an empty database behind.
fn open(config: &StoreConfig, create: bool) -> Result<Store, Failure> {
  match config {
    StoreConfig::Memory => Err(Failure::failed(
      "admin commands need --sqlite or --postgres",
    )),
    StoreConfig::Sqlite { path } => {
      if !create && !Path::new(path).exists() {
        return Err(Failure::not_found(format!(
          "no SQLite database at {} (`apps add` creates it)",
          path.display()
        )));
      }
      let db = sqlite::Sqlite::open(path).map_err(Failure::failed)?;
      Ok(Store::Sqlite(std::sync::Arc::new(db)))
    }
    StoreConfig::Postgres { url, schema } => {
      // The PostgreSQL client blocks on a runtime of its own: never inside a caller's.
      let db = crate::store::off_runtime(|| postgres::Postgres::open(url, schema.as_deref()))
        .map_err(|e| Failure::failed(format!("PostgreSQL: {e}")))?;
      Ok(Store::Postgres(std::sync::Arc::new(db)))
    }
  }
}

/// Fails with exit 3 unless the app exists: admin commands never create one silently.
fn check_app(store: &Store, app: &str) -> Result<(), Failure> {
  let apps = store.apps().map_err(Failure::failed)?;
  if apps.iter().any(|a| a.id == app) {
    Ok(())
  } else {
    Err(Failure::not_found(format!(
      "no app '{app}' in this database (`apps add {app}` creates it)"
    )))
  }
}

fn apps_add(store: &Store, app: &str) -> Result<Outcome, Failure> {
  // The same rule as the server's start (`Emulator::start`).
  if app.is_empty() || app.contains('/') {
    return Err(Failure::usage(
      "app id must be non-empty and contain no '/'",
      short_usage(&mut COMMANDS.iter().take(1), "apps add --help"),
    ));
  }
  let existed = store
    .apps()
    .map_err(Failure::failed)?
    .iter()
    .any(|a| a.id == app);
  store.ensure_app(app).map_err(Failure::failed)?;
  let human = if existed {
    format!("app {app} already exists\n")
  } else {
    format!("created app {app}\n")
  };
  Ok(Outcome::Done {
    human,
    json: json!({ "appId": app, "created": !existed }),
  })
}

fn apps_list(store: &Store) -> Result<Outcome, Failure> {
  let apps = store.apps().map_err(Failure::failed)?;
  let rows = apps
    .iter()
    .map(|a| vec![a.id.clone(), a.users.to_string(), iso8601(a.created)])
    .collect();
  Ok(Outcome::Done {
    human: table(&["APP ID", "USERS", "CREATED"], rows),
    json: apps
      .iter()
      .map(|a| json!({ "appId": a.id, "users": a.users, "created": a.created }))
      .collect(),
  })
}

fn users_add(
  store: &Store,
  app: &str,
  email: &str,
  password: &str,
  settings: &PasswordHashConfig,
) -> Result<Outcome, Failure> {
  let stored = passwords::hash_new(password, settings);
  // As the control API's `create_user`: register confirmed, then resolve to create the user.
  let id = store
    .run_blocking(app, true, |tx| {
      state::register(tx, email, stored.salt, stored.hash, stored.iterations, true)?;
      state::resolve(tx, app, Ident::Email(email), None, Map::new(), now_secs())
    })
    .map_err(|e| match e.status {
      409 => Failure::failed(format!("a user with email '{email}' already exists")),
      _ => e.into(),
    })?;
  Ok(Outcome::Done {
    human: format!("created user {id} ({email})\n"),
    json: json!({ "id": id, "email": email }),
  })
}

fn users_list(store: &Store, app: &str) -> Result<Outcome, Failure> {
  let users = store.run_blocking(app, false, |tx| Ok(tx.users()?))?;
  let email = |u: &state::User| {
    u.data
      .get("email")
      .and_then(Value::as_str)
      .map(str::to_owned)
  };
  let kind = |u: &state::User| match u.kind {
    UserKind::Normal => "normal",
    UserKind::Server => "server",
  };
  let rows = users
    .iter()
    .map(|u| {
      let mut providers: Vec<&str> = u
        .identities
        .iter()
        .map(|i| i.provider_type.as_str())
        .collect();
      providers.dedup();
      vec![
        u.id.clone(),
        kind(u).into(),
        email(u).unwrap_or_else(|| "-".into()),
        if u.disabled { "disabled" } else { "enabled" }.into(),
        providers.join(","),
        iso8601(u.created),
      ]
    })
    .collect();
  let json = users
    .iter()
    .map(|u| {
      json!({
        "id": u.id,
        "type": kind(u),
        "email": email(u),
        "disabled": u.disabled,
        "providers": u.identities.iter().map(|i| i.provider_type.as_str()).collect::<Vec<_>>(),
        "created": u.created,
      })
    })
    .collect();
  Ok(Outcome::Done {
    human: table(
      &["ID", "TYPE", "EMAIL", "STATUS", "PROVIDERS", "CREATED"],
      rows,
    ),
    json,
  })
}

fn no_user(id: &str) -> Failure {
  Failure::not_found(format!("no user '{id}'"))
}

fn users_set_disabled(
  store: &Store,
  app: &str,
  id: &str,
  disabled: bool,
) -> Result<Outcome, Failure> {
  if !store.run_blocking(app, true, |tx| state::set_user_disabled(tx, id, disabled))? {
    return Err(no_user(id));
  }
  let human = if disabled {
    format!("disabled user {id} (its sessions ended)\n")
  } else {
    format!("enabled user {id}\n")
  };
  Ok(Outcome::Done {
    human,
    json: json!({ "id": id, "disabled": disabled }),
  })
}

fn users_delete(store: &Store, app: &str, id: &str) -> Result<Outcome, Failure> {
  if !store.run_blocking(app, true, |tx| Ok(tx.delete_user(id)?))? {
    return Err(no_user(id));
  }
  Ok(Outcome::Done {
    human: format!("deleted user {id}\n"),
    json: json!({ "id": id, "deleted": true }),
  })
}

fn keys_create(store: &Store, app: &str, name: &str) -> Result<Outcome, Failure> {
  let (key, hash) = state::new_key_secret();
  let id = store
    .run_blocking(app, true, |tx| {
      state::create_server_key(tx, app, name, hash, now_secs())
    })
    .map_err(|e| match e.status {
      409 => Failure::failed(format!("a server API key named '{name}' already exists")),
      _ => e.into(),
    })?;
  Ok(Outcome::Done {
    human: format!(
      "created server API key {id} ({name})\nkey: {key}\n(the key is shown only this once)\n"
    ),
    json: json!({ "id": id, "name": name, "key": key }),
  })
}

fn keys_list(store: &Store, app: &str) -> Result<Outcome, Failure> {
  let keys = store.run_blocking(app, false, |tx| Ok(tx.server_keys()?))?;
  let rows = keys
    .iter()
    .map(|k| {
      vec![
        k.id.clone(),
        k.name.clone(),
        if k.disabled { "disabled" } else { "enabled" }.into(),
        k.owner.clone(),
        iso8601(k.created),
      ]
    })
    .collect();
  Ok(Outcome::Done {
    human: table(&["ID", "NAME", "STATUS", "USER ID", "CREATED"], rows),
    json: keys
      .iter()
      .map(|k| {
        json!({
          "id": k.id,
          "name": k.name,
          "disabled": k.disabled,
          "userId": k.owner,
          "created": k.created,
        })
      })
      .collect(),
  })
}

fn keys_delete(store: &Store, app: &str, id: &str) -> Result<Outcome, Failure> {
  if !store.run_blocking(app, true, |tx| state::delete_server_key(tx, id))? {
    return Err(Failure::not_found(format!("no server API key '{id}'")));
  }
  Ok(Outcome::Done {
    human: format!("deleted server API key {id}\n"),
    json: json!({ "id": id, "deleted": true }),
  })
}

fn sessions_revoke(store: &Store, app: &str, id: &str) -> Result<Outcome, Failure> {
  if !store.run_blocking(app, true, |tx| state::revoke_user_sessions(tx, id))? {
    return Err(no_user(id));
  }
  Ok(Outcome::Done {
    human: format!("ended every session of user {id}\n"),
    json: json!({ "userId": id, "revoked": true }),
  })
}

/// Plain text columns, left-aligned, two spaces apart.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
  let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
  for row in &rows {
    for (w, cell) in widths.iter_mut().zip(row) {
      *w = (*w).max(cell.chars().count());
    }
  }
  let line = |cells: Vec<&str>| {
    let mut out = String::new();
    for (i, cell) in cells.iter().enumerate() {
      if i + 1 == cells.len() {
        out.push_str(cell);
      } else {
        out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
      }
    }
    out.push('\n');
    out
  };
  let mut out = line(header.to_vec());
  for row in &rows {
    out.push_str(&line(row.iter().map(String::as_str).collect()));
  }
  out
}

/// `2026-12-02T20:30:48Z` from Unix seconds (UTC).
fn iso8601(secs: u64) -> String {
  let (year, month, day) = crate::ids::civil_date((secs / 86_400) as i64);
  let rem = secs % 86_400;
  format!(
    "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
    rem / 3600,
    rem % 3600 / 60,
    rem % 60
  )
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn dates() {
    assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
    assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(iso8601(1_796_243_448), "2026-12-02T20:30:48Z");
  }

  #[test]
  fn tables_align() {
    let t = table(
      &["ID", "NAME"],
      vec![vec!["a".into(), "x".into()], vec!["bbb".into(), "y".into()]],
    );
    assert_eq!(t, "ID   NAME\na    x\nbbb  y\n");
  }

  #[test]
  fn password_sources() {
    let none = |_: &str| None;
    let env = |k: &str| (k == PASSWORD_ENV).then(|| "from-env".to_string());
    assert_eq!(
      read_password(true, &none, &mut "pw123456\r\n".as_bytes()).unwrap(),
      "pw123456"
    );
    assert_eq!(
      read_password(false, &env, &mut "".as_bytes()).unwrap(),
      "from-env"
    );
    assert!(read_password(false, &none, &mut "".as_bytes()).is_err());
  }
}
