//! `realm-auth-server`: run the emulator from the command line.

use std::io::Write;
use std::process::ExitCode;

use realm_auth_server::cli::{
  BINARY_USAGE, control_token_line, error_json, listening_json, listening_line, parse_binary_args,
};
use realm_auth_server::{Emulator, EmulatorError};

/// Resolves on Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
  #[cfg(unix)]
  {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
      Ok(mut term) => {
        tokio::select! {
          _ = tokio::signal::ctrl_c() => {}
          _ = term.recv() => {}
        }
      }
      Err(_) => {
        let _ = tokio::signal::ctrl_c().await;
      }
    }
  }
  #[cfg(not(unix))]
  {
    let _ = tokio::signal::ctrl_c().await;
  }
}

/// Prints a failure on standard error: one JSON object with `--json`, else a line of text.
fn fail(json: bool, code: Option<u32>, message: &str, usage: bool) {
  if json {
    eprintln!("{}", error_json(code, message));
  } else if usage {
    eprintln!("realm-auth-server: {message}\n\n{BINARY_USAGE}");
  } else {
    eprintln!("realm-auth-server: {message}");
  }
}

fn main() -> ExitCode {
  let args: Vec<String> = std::env::args().skip(1).collect();
  // Admin commands work on the database directly; no server starts.
  if let Some("apps" | "users" | "server-keys" | "sessions") = args.first().map(String::as_str) {
    let code = realm_auth_server::admin::run(
      args,
      &mut std::io::stdin().lock(),
      &mut std::io::stdout().lock(),
      &mut std::io::stderr().lock(),
    );
    return ExitCode::from(code);
  }
  // Looked for before parsing, so that a bad argument is reported as JSON too.
  let json = args.iter().any(|a| a == "--json");
  let cli = match parse_binary_args(args) {
    Ok(Some(cli)) => cli,
    Ok(None) => {
      print!("{BINARY_USAGE}");
      return ExitCode::SUCCESS;
    }
    Err(message) => {
      fail(json, None, &message, true);
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
      fail(json, None, &format!("cannot start the runtime: {e}"), false);
      return ExitCode::FAILURE;
    }
  };
  runtime.block_on(async move {
    let emulator = match Emulator::start(cli.config).await {
      Ok(emulator) => emulator,
      Err(e) => {
        // The same code as `realm-auth-native emulator` reports for this failure.
        fail(json, Some(e.code().value()), &e.to_string(), false);
        // A configuration no emulator can serve is bad usage; a taken port or an unreadable
        // data file is not.
        return match e {
          EmulatorError::Config(_) => ExitCode::from(2),
          _ => ExitCode::FAILURE,
        };
      }
    };
    if let Some(warning) = emulator.exposure_warning() {
      if json {
        eprintln!("{}", serde_json::json!({ "warning": warning }));
      } else {
        eprintln!("realm-auth-server: WARNING: {warning}");
      }
    }
    let (base_url, app_id, token) = (
      emulator.base_url(),
      emulator.app_id(),
      emulator.control_token(),
    );
    let mut stdout = std::io::stdout().lock();
    if json {
      let _ = writeln!(stdout, "{}", listening_json(&base_url, app_id, token));
    } else {
      let _ = writeln!(stdout, "{}", listening_line(&base_url, app_id));
      let _ = writeln!(stdout, "{}", control_token_line(token));
    }
    let _ = stdout.flush();
    drop(stdout);
    shutdown_signal().await;
    emulator.stop().await;
    ExitCode::SUCCESS
  })
}
