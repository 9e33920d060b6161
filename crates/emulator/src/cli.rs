//! Command-line parsing, shared by the `realm-auth-emulator` binary and the
//! Node package's `realm-auth-native emulator` command.

use crate::Config;

/// The options both commands take, as help lines. A macro rather than a
/// `const` because `concat!` only joins literals, and the two help texts must
/// not drift apart.
macro_rules! shared_options {
  () => {
    "  --port <p>                    port to listen on (default 0: pick a free one)
  --host <h>                    interface to bind (default 127.0.0.1)
  --app-id <id>                 the app id to serve (default emulator-app)
  --data <file>                 load state from <file> and save every change to it
  --access-token-ttl <secs>     access token lifetime (default 1800)
  --refresh-token-ttl <secs>    refresh token lifetime (default 5184000)
  --require-email-confirmation  new email/password accounts start unconfirmed
  --custom-token-secret <s>     enable the custom-token provider with this HS256 secret
  --function-identity-field <f> custom-function payload field holding the id (default id)
  --max-api-keys <n>            user API keys per user (default 20)
  --password-iterations <n>     PBKDF2 iterations for passwords (default 1000)
  --json                        print the listening line and any failure as one JSON object
"
  };
}

macro_rules! help_tail {
  () => {
    "  -h, --help                    print this help

Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 could not start (port taken, data file
unreadable), 2 bad usage.

Control API: http://<host>:<port>/_emulator/ (GET it for the list of routes). Guide (control
API, faults, the data file): docs/EMULATOR.md, shipped in the realm-auth-native package.
"
  };
}

/// The help text of `realm-auth-native emulator` (the Node package's command).
pub const USAGE: &str = concat!(
  "\
Usage: realm-auth-native emulator [options]
       realm-auth-native emulator users <add|list> ...   (realm-auth-native emulator users --help)

A local App Services-compatible auth server (users, sessions, user and server API keys),
run in this Node process.

Options:
",
  shared_options!(),
  help_tail!(),
  "
The realm-auth-emulator binary also takes --threads; this command refuses it (the emulator
runs on the addon's threads).
"
);

/// The help text of the `realm-auth-emulator` binary: the same options plus `--threads`.
pub const BINARY_USAGE: &str = concat!(
  "\
Usage: realm-auth-emulator [options]

A local App Services-compatible auth server (users, sessions, user and server API keys).

Options:
",
  shared_options!(),
  "  --threads <n>                 tokio worker threads (default 1)
",
  help_tail!()
);

/// Parsed arguments.
pub struct Cli {
  /// The emulator settings.
  pub config: Config,
  /// Tokio worker threads (the binary only; in-process emulators share the host runtime).
  pub threads: usize,
  /// `--json`: the listening line and failures as JSON.
  pub json: bool,
}

/// Parses the arguments of `realm-auth-native emulator` (after the command name); `Ok(None)`
/// means help was asked for. `--threads` is refused: an in-process emulator cannot honour it.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Cli>, String> {
  parse(args, false)
}

/// Parses the arguments of the `realm-auth-emulator` binary: [`parse_args`] plus `--threads`.
pub fn parse_binary_args(args: impl IntoIterator<Item = String>) -> Result<Option<Cli>, String> {
  parse(args, true)
}

fn parse(args: impl IntoIterator<Item = String>, binary: bool) -> Result<Option<Cli>, String> {
  let mut config = Config::default();
  let mut threads = 1usize;
  let mut json = false;
  let mut args = args.into_iter();
  while let Some(arg) = args.next() {
    // Accept both `--flag value` and `--flag=value`.
    let (flag, inline) = match arg.split_once('=') {
      Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
      _ => (arg.clone(), None),
    };
    let mut value = |name: &str| -> Result<String, String> {
      inline
        .clone()
        .or_else(|| args.next())
        .ok_or_else(|| format!("{name} needs a value"))
    };
    fn number<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
      v.parse()
        .map_err(|_| format!("{name}: '{v}' is not a valid number"))
    }
    match flag.as_str() {
      "-h" | "--help" => return Ok(None),
      "--port" => config.port = number("--port", value("--port")?)?,
      "--host" => config.host = value("--host")?,
      "--app-id" => config.app_id = value("--app-id")?,
      "--data" => config.data_file = Some(value("--data")?.into()),
      "--access-token-ttl" => {
        config.access_token_ttl_secs = number("--access-token-ttl", value("--access-token-ttl")?)?
      }
      "--refresh-token-ttl" => {
        config.refresh_token_ttl_secs =
          number("--refresh-token-ttl", value("--refresh-token-ttl")?)?
      }
      "--require-email-confirmation" if inline.is_none() => {
        config.require_email_confirmation = true
      }
      "--custom-token-secret" => config.custom_token_secret = Some(value("--custom-token-secret")?),
      "--function-identity-field" => {
        config.function_identity_field = value("--function-identity-field")?
      }
      "--max-api-keys" => {
        config.max_api_keys_per_user = number("--max-api-keys", value("--max-api-keys")?)?
      }
      "--password-iterations" => {
        config.password_iterations =
          number("--password-iterations", value("--password-iterations")?)?
      }
      "--json" if inline.is_none() => json = true,
      "--threads" if binary => {
        threads = number("--threads", value("--threads")?)?;
        if threads == 0 {
          return Err("--threads must be at least 1".into());
        }
      }
      // Said plainly rather than "unknown": the binary's help lists it.
      "--threads" => {
        return Err(
          "--threads is taken only by the realm-auth-emulator binary (this emulator runs on the addon's threads)"
            .into(),
        );
      }
      other => return Err(format!("unknown argument '{other}'")),
    }
  }
  Ok(Some(Cli {
    config,
    threads,
    json,
  }))
}

/// The line printed once the emulator listens.
pub fn listening_line(base_url: &str, app_id: &str) -> String {
  format!("App Services emulator listening on {base_url} (app id {app_id})")
}

/// The listening line with `--json`. The Node command prints the same object, keys in the same
/// order (spelled out here: `json!` orders keys by name or by insertion, depending on features).
pub fn listening_json(base_url: &str, app_id: &str) -> String {
  format!(
    "{{\"baseUrl\":{},\"appId\":{}}}",
    json_string(base_url),
    json_string(app_id)
  )
}

/// A failure with `--json`: the object every `realm-auth-native` command prints on standard
/// error. `code` is the numeric error code (an [`crate::EmulatorErrorCode`] here; `null` for bad
/// usage); `errorCode`, a server's `error_code` string, the emulator's own failures never have.
pub fn error_json(code: Option<u32>, message: &str) -> String {
  let code = code.map_or_else(|| "null".to_string(), |c| c.to_string());
  format!(
    "{{\"code\":{code},\"errorCode\":null,\"message\":{}}}",
    json_string(message)
  )
}

fn json_string(s: &str) -> String {
  serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
  use super::*;

  fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
  }

  #[test]
  fn parses_flags() {
    let cli = parse_binary_args(args(
      "--port 9090 --app-id my-app --host 0.0.0.0 --data /tmp/x.json --access-token-ttl 5 --require-email-confirmation --custom-token-secret s --threads 2 --json",
    ))
    .unwrap()
    .unwrap();
    assert_eq!(cli.config.port, 9090);
    assert_eq!(cli.config.app_id, "my-app");
    assert_eq!(cli.config.host, "0.0.0.0");
    assert_eq!(cli.config.access_token_ttl_secs, 5);
    assert!(cli.config.require_email_confirmation);
    assert_eq!(cli.config.custom_token_secret.as_deref(), Some("s"));
    assert_eq!(cli.threads, 2);
    assert!(cli.json);
    assert!(!parse_args(args("--port=1")).unwrap().unwrap().json);
    assert!(parse_args(args("--help")).unwrap().is_none());
  }

  #[test]
  fn rejects_bad_args() {
    for bad in ["--port", "--port x", "--bogus", "--json=1"] {
      assert!(parse_args(args(bad)).is_err(), "{bad}");
      assert!(parse_binary_args(args(bad)).is_err(), "{bad}");
    }
    assert!(parse_binary_args(args("--threads 0")).is_err());
    let refused = parse_args(args("--threads 2")).err().unwrap();
    assert!(
      refused.contains("only by the realm-auth-emulator binary"),
      "{refused}"
    );
  }

  /// Every flag a help text lists is one its command accepts, and `--threads` is listed
  /// exactly where it is accepted.
  #[test]
  fn help_lists_what_each_command_accepts() {
    fn flags(usage: &str) -> Vec<&str> {
      usage
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .flat_map(|w| w.split(','))
        .filter(|w| w.starts_with("--"))
        .collect()
    }
    for (usage, parse) in [
      (
        USAGE,
        parse_args as fn(Vec<String>) -> Result<Option<Cli>, String>,
      ),
      (
        BINARY_USAGE,
        parse_binary_args as fn(Vec<String>) -> Result<Option<Cli>, String>,
      ),
    ] {
      let listed = flags(usage);
      assert!(listed.len() >= 12, "{listed:?}");
      for flag in listed {
        if let Err(e) = parse(vec![flag.to_string(), "1".into()]) {
          assert!(
            !e.contains(&format!("'{flag}'")) && !e.contains("only by"),
            "{flag}: {e}"
          );
        }
      }
      assert!(usage.contains("docs/EMULATOR.md"));
    }
    assert!(BINARY_USAGE.contains("--threads <n>"));
    assert!(!flags(USAGE).contains(&"--threads"));
  }

  #[test]
  fn json_lines() {
    assert_eq!(
      listening_json("http://127.0.0.1:1", "a"),
      r#"{"baseUrl":"http://127.0.0.1:1","appId":"a"}"#
    );
    let v: serde_json::Value = serde_json::from_str(&error_json(None, "bad \"x\"")).unwrap();
    assert_eq!(
      v,
      serde_json::json!({ "code": null, "errorCode": null, "message": "bad \"x\"" })
    );
    assert_eq!(
      error_json(Some(4917), "taken"),
      r#"{"code":4917,"errorCode":null,"message":"taken"}"#
    );
    let v: serde_json::Value =
      serde_json::from_str(&listening_json("http://127.0.0.1:1", "a")).unwrap();
    assert_eq!(
      v,
      serde_json::json!({ "baseUrl": "http://127.0.0.1:1", "appId": "a" })
    );
  }
}
