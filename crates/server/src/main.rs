//! `realm-auth-server`: the emulator (the default command), `serve` (production) and the
//! admin commands.

use std::io::Write;
use std::process::ExitCode;

use realm_auth_server::cli::{
  BINARY_USAGE, SERVE_USAGE, control_token_line, error_json, listening_json, listening_line,
  parse_binary_args, parse_serve_args, serving_json, serving_line,
};
use realm_auth_server::{Emulator, EmulatorError};

// mimalloc rather than glibc's malloc: under a mix of logins (each allocates a session) and
// lists, glibc's heap fragments and lists fell from ~85k to ~62k req/s on one core
// (`BENCH_BACKENDS=memory npm run bench:server`); mimalloc holds them at 75–90k.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The signals a server acts on: Ctrl-C, SIGTERM and, with TLS, SIGHUP. Registered before the
/// server starts, so that one sent as soon as the listening line is read (a supervisor's stop or
/// certificate reload) is handled, not left to its default action (the process dies with 143
/// without draining, or on SIGHUP).
struct Signals {
  #[cfg(unix)]
  term: Option<tokio::signal::unix::Signal>,
  #[cfg(unix)]
  interrupt: Option<tokio::signal::unix::Signal>,
  /// Only with TLS: without, SIGHUP keeps its default, ending the process, as a closed terminal
  /// expects.
  #[cfg(unix)]
  hangup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
  /// Registers the handlers (call on the runtime).
  fn install(tls: bool) -> Signals {
    #[cfg(unix)]
    {
      use tokio::signal::unix::{SignalKind, signal};
      Signals {
        term: signal(SignalKind::terminate()).ok(),
        interrupt: signal(SignalKind::interrupt()).ok(),
        hangup: tls.then(|| signal(SignalKind::hangup()).ok()).flatten(),
      }
    }
    #[cfg(not(unix))]
    {
      let _ = tls;
      Signals {}
    }
  }
}

/// Resolves when `signal` arrives; never if it could not be registered.
#[cfg(unix)]
async fn arrival(signal: &mut Option<tokio::signal::unix::Signal>) {
  if let Some(s) = signal
    && s.recv().await.is_some()
  {
    return;
  }
  std::future::pending().await
}

/// Waits for Ctrl-C or SIGTERM; with TLS, rereads the certificate files on every SIGHUP
/// meanwhile.
async fn serve_until_shutdown(server: &Emulator, json: bool, signals: Signals) {
  #[cfg(unix)]
  {
    let Signals {
      mut term,
      mut interrupt,
      mut hangup,
    } = signals;
    // SIGINT that could not be registered early falls back to tokio's own Ctrl-C handling.
    let early_interrupt = interrupt.is_some();
    loop {
      tokio::select! {
        _ = arrival(&mut term) => return,
        _ = arrival(&mut interrupt), if early_interrupt => return,
        _ = tokio::signal::ctrl_c(), if !early_interrupt => return,
        _ = arrival(&mut hangup) => match server.reload_tls() {
          Ok(_) if json => eprintln!("{}", serde_json::json!({ "tlsReloaded": true })),
          Ok(_) => eprintln!("realm-auth-server: TLS certificate reloaded"),
          // The files in use stay: a botched renewal must not take the server down.
          Err(e) => fail(json, None, &e.to_string(), None),
        },
      }
    }
  }
  #[cfg(not(unix))]
  {
    let _ = (server, json, signals);
    let _ = tokio::signal::ctrl_c().await;
  }
}

/// Prints a failure on standard error: one JSON object with `--json`, else a line of text.
/// With `help`, the message points at the command's help (bad usage).
fn fail(json: bool, code: Option<u32>, message: &str, help: Option<&str>) {
  if json {
    eprintln!("{}", error_json(code, message));
  } else if let Some(help) = help {
    eprintln!("realm-auth-server: {message}\n(see `{help} --help`)");
  } else {
    eprintln!("realm-auth-server: {message}");
  }
}

/// The two server commands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Command {
  /// Test mode: a control API, a memory store by default.
  Emulator,
  /// Production: a SQL store, no control API.
  Serve,
}

fn main() -> ExitCode {
  let mut args: Vec<String> = std::env::args().skip(1).collect();
  let command = match args.first().map(String::as_str) {
    Some("serve") => Command::Serve,
    Some("emulator") => Command::Emulator,
    // Admin commands work on the database directly; no server starts.
    Some("apps" | "users" | "server-keys" | "sessions") => {
      let code = realm_auth_server::admin::run(
        args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
      );
      return ExitCode::from(code);
    }
    // Without a command word the binary is the emulator, as it always was.
    _ => return run(Command::Emulator, args),
  };
  args.remove(0);
  run(command, args)
}

fn run(command: Command, args: Vec<String>) -> ExitCode {
  let (usage, name, parse): (&str, &str, fn(Vec<String>) -> _) = match command {
    Command::Emulator => (BINARY_USAGE, "realm-auth-server", parse_binary_args),
    Command::Serve => (SERVE_USAGE, "realm-auth-server serve", parse_serve_args),
  };
  // Looked for before parsing, so that a bad argument is reported as JSON too.
  let json = args.iter().any(|a| a == "--json");
  let cli = match parse(args) {
    Ok(Some(cli)) => cli,
    Ok(None) => {
      print!("{usage}");
      return ExitCode::SUCCESS;
    }
    Err(message) => {
      fail(json, None, &message, Some(name));
      return ExitCode::from(2);
    }
  };
  // One thread by default: a current-thread runtime is the cheapest way to serve on one core.
  let runtime = if cli.threads == 1 {
    tokio::runtime::Builder::new_current_thread()
      .enable_all()
      .build()
  } else {
    tokio::runtime::Builder::new_multi_thread()
      .worker_threads(cli.threads)
      .enable_all()
      .build()
  };
  let runtime = match runtime {
    Ok(rt) => rt,
    Err(e) => {
      fail(json, None, &format!("cannot start the runtime: {e}"), None);
      return ExitCode::FAILURE;
    }
  };
  runtime.block_on(async move {
    let signals = Signals::install(cli.config.tls_cert_file.is_some());
    let server = match Emulator::start(cli.config).await {
      Ok(server) => server,
      Err(e) => {
        // The same code as `realm-auth-server emulator` (Node) reports for this failure.
        fail(json, Some(e.code().value()), &e.to_string(), None);
        // A configuration no server can serve is bad usage; a taken port or an unusable
        // database is not.
        return match e {
          EmulatorError::Config(_) => ExitCode::from(2),
          _ => ExitCode::FAILURE,
        };
      }
    };
    let base_url = server.base_url();
    let mut stdout = std::io::stdout().lock();
    if command == Command::Serve {
      let apps = server.app_ids();
      let line = if json {
        serving_json(&base_url, &apps)
      } else {
        serving_line(&base_url, &apps)
      };
      let _ = writeln!(stdout, "{line}");
    } else {
      // Production servers listen on public interfaces by design; an emulator should not.
      if let Some(warning) = server.exposure_warning() {
        if json {
          eprintln!("{}", serde_json::json!({ "warning": warning }));
        } else {
          eprintln!("realm-auth-server: WARNING: {warning}");
        }
      }
      let (app_id, token) = (server.app_id(), server.control_token());
      if json {
        let _ = writeln!(stdout, "{}", listening_json(&base_url, app_id, token));
      } else {
        let _ = writeln!(stdout, "{}", listening_line(&base_url, app_id));
        let _ = writeln!(stdout, "{}", control_token_line(token));
      }
    }
    let _ = stdout.flush();
    drop(stdout);
    serve_until_shutdown(&server, json, signals).await;
    server.stop().await;
    ExitCode::SUCCESS
  })
}
