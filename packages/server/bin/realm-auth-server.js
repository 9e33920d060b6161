#!/usr/bin/env node
// The realm-auth-server command line:
//   realm-auth-server emulator [options]             run the App Services emulator until Ctrl-C or SIGTERM
//   realm-auth-server emulator users <add|list> ...  add or list the users of a running emulator
//   realm-auth-server serve [--config <file>] ...    serve from SQLite or PostgreSQL, for production
//   realm-auth-server <apps|users|server-keys|sessions> ...  admin commands on serve's database
// Each command is one entry of COMMANDS below.
// Exit codes: 0 done, 1 the server or the network failed, 2 bad input.
// With --json, a failure is one JSON object on standard error and nothing else.
"use strict";

const { readFileSync } = require("node:fs");
const { parseArgs } = require("node:util");
const { Emulator, runAdmin } = require("..");

const EXIT_CODES = `Exit codes: 0 done, 1 the server, the database or the network failed, 2 bad input (usage,
an invalid option), 3 the control token was refused (emulator users) or no such app, user or key
(admin commands).`;

const JSON_NOTE = `With --json, output is JSON and a failure is one object on standard error:
{"code": <the numeric error code or null>, "errorCode": <the server's or null>, "message": "..."}`;

const USAGE = `Usage: realm-auth-server <command> [options]

Commands:
  emulator [options]               run a local App Services emulator
                                   (realm-auth-server emulator --help)
  emulator users <add|list> ...    add or list the users of a running emulator
                                   (realm-auth-server emulator users --help)
  serve [--config <file>] ...      serve the client API from SQLite or PostgreSQL, for production
                                   (realm-auth-server serve --help)
  apps|users|server-keys|sessions  admin commands on serve's database
                                   (realm-auth-server users --help)

${EXIT_CODES}
${JSON_NOTE}
`;

const USERS_USAGE = `Usage: realm-auth-server emulator users <add|list> [options]

Adds or lists the users of a running emulator through its control API (/_emulator/).

Actions:
  add                  create a confirmed email/password user and print its id
  list                 list the users

Options:
  --base-url <url>     the emulator (default: $REALM_AUTH_EMULATOR_HOST if set; required otherwise)
  --control-token-file <file>
                       read the emulator's control token from <file> (without it, the token is
                       read from $REALM_AUTH_EMULATOR_CONTROL_TOKEN); the emulator prints its
                       token when it starts
  --email <email>      the new user's email (add; required)
  --password-stdin     read the new user's password from standard input
                       (add; without it, the password is read from $REALM_AUTH_PASSWORD)
  --timeout <ms>       deadline of the request (default 60000)
  --json               print JSON; a failure is one JSON object on standard error
  -h, --help           print this help

Secrets are never taken from the command line, where other users and shell histories can see them.

${EXIT_CODES}
`;

const DEFAULT_TIMEOUT_MS = 60000;
// The control token's variable: the emulator takes its token from it, `emulator users` sends it.
const CONTROL_TOKEN_ENV = "REALM_AUTH_EMULATOR_CONTROL_TOKEN";
// The code of the warning Emulator.start emits when other machines may reach the emulator.
const EXPOSED_WARNING = "REALM_AUTH_EMULATOR_EXPOSED";
// realm-auth-native's ErrorCode.NetworkError and ErrorCode.Timeout: `emulator users` reports a
// failed request with the codes the client SDK gives the same failures (this package does not
// depend on the client).
const NETWORK_ERROR = 4000;
const TIMEOUT = 4901;
// The brand of realm-auth-native's errors, which this package's errors carry too.
const BRAND = Symbol.for("realm-auth-native.error");

/** A failure of the command line itself, or a server failure with its codes carried over. */
class CliError extends Error {
  constructor(exitCode, message, { code = null, errorCode = null } = {}) {
    super(message);
    this.exitCode = exitCode;
    this.code = code;
    this.errorCode = errorCode;
  }
}

/** Bad usage: exit code 2, with a pointer to the command's help. */
function usage(message) {
  return new CliError(2, message);
}

function exitCodeOf(err) {
  if (err instanceof CliError) return err.exitCode;
  // The emulator throws a branded TypeError for every option it refuses (EmulatorBadRequest).
  if (err instanceof TypeError && err?.[BRAND] === true) return 2;
  return 1;
}

/** The numeric `code` and the server's `errorCode`, or nulls (Node's own errors have string codes). */
function fields(err) {
  return {
    code: typeof err?.code === "number" ? err.code : null,
    errorCode: typeof err?.errorCode === "string" ? err.errorCode : null,
  };
}

/** Parses a command's options; every mistake is bad usage. */
function parseOptions(args, options) {
  // Secrets on the command line are refused outright, before anything else.
  for (const arg of args) {
    if (/^--(password|api-key|key|control-token)(=|$)/.test(arg)) {
      throw usage(`${arg.split("=")[0]} is not accepted: secrets are read from the environment, a file or standard input`);
    }
  }
  try {
    return parseArgs({ args, allowPositionals: true, options: { ...options, json: { type: "boolean" }, help: { type: "boolean", short: "h" } } });
  } catch (err) {
    // util.parseArgs explains how to pass a positional that starts with '-': noise here.
    const unknown = /^Unknown option '([^']+)'/.exec(err.message);
    throw usage(unknown ? `unknown argument '${unknown[1]}'` : err.message);
  }
}

function parseTimeout(text) {
  if (text === undefined) return DEFAULT_TIMEOUT_MS;
  if (!/^\d+$/.test(text)) throw usage(`--timeout: '${text}' is not a whole number of milliseconds`);
  return Number(text);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

function printer(json) {
  return (value, text) => process.stdout.write(`${json ? JSON.stringify(value) : text}\n`);
}

// ---- emulator ------------------------------------------------------------------------------

async function emulator(args) {
  if (args[0] === "users") return emulatorUsers(args.slice(1));
  let options;
  try {
    // The same parser as the realm-auth-server Rust binary (crates/server/src/cli.rs); it
    // accepts --json, which the top level below has already looked for.
    options = Emulator.parseArgs(args);
  } catch (err) {
    throw usage(err.message);
  }
  if (options === null) {
    process.stdout.write(Emulator.usage());
    return 0;
  }
  if (json) {
    // Standard error carries JSON only: the warning of an emulator other machines can reach
    // (emitted by Emulator.start, printed by Node's own handler without --json) as an object.
    process.on("warning", (warning) => {
      if (warning.code === EXPOSED_WARNING) process.stderr.write(`${JSON.stringify({ warning: warning.message })}\n`);
    });
  }
  // Refused options (a bad app id) are bad usage; a taken port or an unreadable data file is not.
  const running = await Emulator.start(options);
  // The same lines as the realm-auth-server Rust binary (crates/server/src/cli.rs): with --json
  // one object, keys in its order; else the listening line, then the control token's.
  return serveUntilSignalled(
    running,
    json
      ? JSON.stringify({ baseUrl: running.baseUrl, appId: running.appId, controlToken: running.controlToken })
      : `${running.listeningLine()}\n${running.controlTokenLine()}`,
  );
}

/** Prints `line` once `running` listens, then serves until SIGINT or SIGTERM. */
async function serveUntilSignalled(running, line) {
  // Listening for the signals before printing the line: a script that reads the line and
  // signals at once must find them handled.
  const signalled = new Promise((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  // The server runs on the addon's threads, which do not keep Node alive: a
  // timer does, until a signal arrives.
  const keepAlive = setInterval(() => {}, 1 << 30);
  process.stdout.write(`${line}\n`);
  await signalled;
  clearInterval(keepAlive);
  await running.stop();
  return 0;
}

// ---- serve ---------------------------------------------------------------------------------

async function serve(args) {
  let options;
  try {
    // The Rust binary's parser (crates/server/src/cli.rs): a config file, the server options,
    // a SQL store required, no control API.
    options = Emulator.parseServeArgs(args);
  } catch (err) {
    throw usage(err.message);
  }
  if (options === null) {
    process.stdout.write(Emulator.serveUsage());
    return 0;
  }
  // A database that cannot be opened or migrated fails here, with exit code 1.
  const running = await Emulator.start(options);
  // SIGHUP rereads the TLS certificate, as the Rust binary does (and would end Node otherwise).
  process.on("SIGHUP", () => {
    try {
      running.reloadTls();
    } catch (err) {
      process.stderr.write(`realm-auth-server: the TLS certificate was not reloaded: ${err.message}\n`);
    }
  });
  return serveUntilSignalled(running, running.servingLine(json));
}

/** The emulator's base URL: --base-url, else $REALM_AUTH_EMULATOR_HOST (a host:port or a URL). */
function emulatorBaseUrl(flag) {
  const given = flag ?? (process.env.REALM_AUTH_EMULATOR_HOST || undefined);
  if (given === undefined) throw usage("--base-url is required (or set REALM_AUTH_EMULATOR_HOST)");
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`;
  let url;
  try {
    url = new URL(text);
  } catch {
    throw usage(`'${given}' is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw usage(`'${given}' is not an http:// or https:// URL`);
  return url.href.replace(/\/+$/, "");
}

// Node's fetch reports why a request failed in its error's cause; these are the words the client
// SDK uses for the same failures (crates/client/src/transport.rs).
const REASONS = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ECONNABORTED: "connection aborted",
  ETIMEDOUT: "timed out",
  UND_ERR_CONNECT_TIMEOUT: "timed out",
  EPIPE: "connection closed",
  UND_ERR_SOCKET: "connection closed",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "host unreachable",
  EADDRNOTAVAIL: "host unreachable",
  ENOTFOUND: "could not resolve the host name",
  EAI_AGAIN: "could not resolve the host name",
};

/** The emulator's control token: from --control-token-file, else $REALM_AUTH_EMULATOR_CONTROL_TOKEN. */
function controlToken(file) {
  if (file !== undefined) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw usage(`--control-token-file: cannot read '${file}': ${err.message}`);
    }
    // Without the line break editors and echo leave at the end (as the emulator reads it).
    const token = text.replace(/[\r\n]+$/, "");
    if (!token) throw usage(`--control-token-file: '${file}' is empty`);
    return token;
  }
  const token = process.env[CONTROL_TOKEN_ENV];
  if (!token) {
    throw usage(`no control token: set ${CONTROL_TOKEN_ENV} or pass --control-token-file (the emulator prints its token when it starts)`);
  }
  return token;
}

/** One request to the emulator's control API; its JSON answer, or a CliError. */
async function control(baseUrl, token, method, path, body, timeout) {
  const url = `${baseUrl}/_emulator/${path}`;
  let response;
  let text;
  try {
    response = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: "error",
      signal: AbortSignal.timeout(timeout),
    });
    text = await response.text();
  } catch (err) {
    // The same codes and message as the client SDK's network failures, so that scripts check one shape.
    if (err?.name === "TimeoutError") {
      throw new CliError(1, `request to ${url} failed, reason: timed out`, { code: TIMEOUT });
    }
    const cause = err?.cause;
    const reason = REASONS[cause?.code] ?? cause?.message ?? err?.message ?? String(err);
    throw new CliError(1, `request to ${url} failed, reason: ${reason}`, { code: NETWORK_ERROR });
  }
  let parsed;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    // Control errors are {"error": "...", "error_code": "InvalidArgument" | "NotFound" | ...},
    // newer emulators add a numeric "code".
    const message = typeof parsed?.error === "string" && parsed.error ? parsed.error : `${method} ${url} answered HTTP ${response.status}`;
    const code = typeof parsed?.code === "number" ? parsed.code : null;
    const errorCode = typeof parsed?.error_code === "string" ? parsed.error_code : null;
    // 413 and 415 are bad input too (a body too big, or not JSON).
    const exitCode = [400, 413, 415].includes(response.status) ? 2 : response.status === 401 || response.status === 403 ? 3 : 1;
    throw new CliError(exitCode, message, { code, errorCode });
  }
  if (parsed === undefined) throw new CliError(1, `the answer to ${method} ${url} is not JSON`);
  return parsed;
}

async function emulatorUsers(args) {
  const { values, positionals } = parseOptions(args, {
    "base-url": { type: "string" },
    "control-token-file": { type: "string" },
    email: { type: "string" },
    "password-stdin": { type: "boolean" },
    timeout: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(USERS_USAGE);
    return 0;
  }
  const [action, ...extra] = positionals;
  if (action !== "add" && action !== "list") throw usage(action ? `unknown action '${action}'` : "no action given (add or list)");
  if (extra.length > 0) throw usage(`${action} takes no argument`);
  if (action === "list" && (values.email !== undefined || values["password-stdin"])) {
    throw usage("list takes no --email or --password-stdin");
  }
  if (action === "add" && !values.email) throw usage("--email is required");
  const baseUrl = emulatorBaseUrl(values["base-url"]);
  const token = controlToken(values["control-token-file"]);
  const timeout = parseTimeout(values.timeout);
  const print = printer(values.json);
  if (action === "add") {
    const password = values["password-stdin"] ? await readStdin() : process.env.REALM_AUTH_PASSWORD;
    if (!password) throw usage("no password: set REALM_AUTH_PASSWORD or pass --password-stdin");
    const user = await control(baseUrl, token, "POST", "users", { email: values.email, password }, timeout);
    print(user, `created ${user.id} (${user.email})`);
  } else {
    const users = await control(baseUrl, token, "GET", "users", undefined, timeout);
    if (!Array.isArray(users)) throw new CliError(1, "the emulator's user list is not a JSON array");
    const text = users.map((u) => `${u.id}  ${u.email ?? `(${u.type ?? "no email"})`}`).join("\n");
    print(users, users.length ? text : "(no users)");
  }
  return 0;
}

// ---- admin commands --------------------------------------------------------------------------

/** `apps`, `users`, `server-keys`, `sessions`: the server crate parses, runs and prints them. */
function admin(command) {
  return async (args) => {
    const stdin = args.includes("--password-stdin") ? Buffer.from(await readStdin(), "utf8") : null;
    const { exitCode, stdout, stderr } = await runAdmin([command, ...args], stdin);
    process.stdout.write(stdout);
    process.stderr.write(stderr);
    return exitCode;
  };
}

// ---- main ----------------------------------------------------------------------------------

// One entry per command, with the help a usage failure of it points at.
const COMMANDS = {
  emulator: { run: emulator, help: (args) => (args[0] === "users" ? "realm-auth-server emulator users --help" : "realm-auth-server emulator --help") },
  serve: { run: serve, help: () => "realm-auth-server serve --help" },
  // They print their own failures (and their help), with or without --json.
  apps: { run: admin("apps"), help: () => "realm-auth-server apps --help" },
  users: { run: admin("users"), help: () => "realm-auth-server users --help" },
  "server-keys": { run: admin("server-keys"), help: () => "realm-auth-server server-keys --help" },
  sessions: { run: admin("sessions"), help: () => "realm-auth-server sessions --help" },
};

async function main(argv) {
  const [command, ...args] = argv;
  if (command === "-h" || command === "--help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (command === undefined) throw usage(`no command given (${Object.keys(COMMANDS).join(" or ")})`);
  if (!Object.hasOwn(COMMANDS, command)) throw usage(`unknown command '${command}'`);
  return COMMANDS[command].run(args);
}

const argv = process.argv.slice(2);
// Seen before any parsing, so that even a bad command or flag is reported as JSON.
const json = argv.includes("--json");
// Process warnings would be a second thing on standard error: the failure that ends the command
// says what went wrong.
if (json) process.removeAllListeners("warning");

main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    const exitCode = exitCodeOf(err);
    const message = typeof err?.message === "string" && err.message ? err.message : String(err);
    if (json) {
      process.stderr.write(`${JSON.stringify({ ...fields(err), message })}\n`);
    } else {
      // The message only, no stack: the messages already say what failed, in words.
      // A bad or missing command gets the list of commands; a bad option, a pointer to its help.
      const command = Object.hasOwn(COMMANDS, argv[0]) ? COMMANDS[argv[0]] : undefined;
      const hint = exitCode !== 2 ? "" : command ? `(${command.help(argv.slice(1))})\n` : `\n${USAGE}`;
      process.stderr.write(`realm-auth-server: ${message}\n${hint}`);
    }
    process.exitCode = exitCode;
  },
);
