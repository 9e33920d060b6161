#!/usr/bin/env node
// The package's command line:
//   realm-auth-native keys <action> ...              manage a user's API keys on any compatible server
// (The emulator's commands are in the realm-auth-server package: realm-auth-server emulator.)
// Exit codes: 0 done, 1 the server or the network failed, 2 bad input, 3 login refused.
// With --json, a failure is one JSON object on standard error and nothing else.
"use strict";

const { parseArgs } = require("node:util");
const { App, Credentials, ErrorCode, MetadataMode, isRealmAuthError, setLogger } = require("..");

const EXIT_CODES = `Exit codes: 0 done, 1 the server or the network failed, 2 bad input (usage, an invalid
key name or id), 3 login refused (wrong password, disabled key, session refused).`;

const JSON_NOTE = `With --json, output is JSON and a failure is one object on standard error:
{"code": <the SDK's numeric error code or null>, "errorCode": <the server's or null>, "message": "..."}`;

const USAGE = `Usage: realm-auth-native <command> [options]

Commands:
  keys <action> [options]          list, create, enable, disable or delete a user's API keys
                                   (realm-auth-native keys --help)

The local App Services emulator is the realm-auth-server package's: npx realm-auth-server emulator

${EXIT_CODES}
${JSON_NOTE}
`;

const KEYS_USAGE = `Usage: realm-auth-native keys <action> [name | key id] --app-id <id> [options]

Actions:
  list                 list the user's keys
  create <name>        create a key and print its value (shown only this once)
  enable <key id>      enable a key
  disable <key id>     disable a key
  delete <key id>      delete a key

Options:
  --app-id <id>        the App id (required)
  --base-url <url>     the server (default: $REALM_AUTH_EMULATOR_HOST if set, else the hosted default)
  --email <email>      log in with email/password; the password is read from $REALM_AUTH_PASSWORD,
                       or from standard input with --password-stdin
  --password-stdin     read the password from standard input
  --api-key-stdin      log in with an API key read from standard input
                       (without --email or --api-key-stdin, the key is read from $REALM_AUTH_API_KEY)
  --timeout <ms>       deadline of each call (default 60000)
  --json               print JSON; a failure is one JSON object on standard error
  -h, --help           print this help

Secrets are never taken from the command line, where other users and shell histories can see them.

${EXIT_CODES}
`;

const DEFAULT_TIMEOUT_MS = 60000;
/** A failure of the command line itself, or an SDK/server failure with its codes carried over. */
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

// Codes that mean the input can never succeed as given: the SDK's refused argument (a malformed
// key id) and the server's validation errors (a key name with a space).
const BAD_INPUT = new Set([ErrorCode.InvalidArgument, ErrorCode.InvalidParameter, ErrorCode.MissingParameter, ErrorCode.BadRequest]);
// Codes that mean the credentials or the session were refused.
const REFUSED = new Set([
  ErrorCode.MissingAuthReq,
  ErrorCode.InvalidSession,
  ErrorCode.UserAppDomainMismatch,
  ErrorCode.UserDisabled,
  ErrorCode.AuthError,
  ErrorCode.InvalidPassword,
]);

function exitCodeOf(err) {
  if (err instanceof CliError) return err.exitCode;
  // The SDK throws a TypeError for every argument it refuses.
  if (BAD_INPUT.has(err?.code) || (err instanceof TypeError && isRealmAuthError(err))) return 2;
  // Any 401/403 too: a server may refuse with a code this list does not know.
  if (REFUSED.has(err?.code) || err?.statusCode === 401 || err?.statusCode === 403) return 3;
  return 1;
}

/** `err` (an SDK error) with `prefix` before its message, its codes and exit code kept. */
function withContext(err, prefix) {
  return new CliError(exitCodeOf(err), `${prefix}: ${err.message}`, fields(err));
}

/** The SDK's numeric `code` and the server's `errorCode`, or nulls (Node's own errors have string codes). */
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

// ---- keys ----------------------------------------------------------------------------------

async function credentials(values) {
  if (values.email !== undefined) {
    const password = values["password-stdin"] ? await readStdin() : process.env.REALM_AUTH_PASSWORD;
    if (!password) throw usage("no password: set REALM_AUTH_PASSWORD or pass --password-stdin");
    return Credentials.emailPassword(values.email, password);
  }
  if (values["password-stdin"]) throw usage("--password-stdin needs --email");
  const key = values["api-key-stdin"] ? await readStdin() : process.env.REALM_AUTH_API_KEY;
  if (!key) throw usage("no credentials: use --email, --api-key-stdin, or set REALM_AUTH_API_KEY");
  return Credentials.apiKey(key);
}

async function keys(args) {
  const { values, positionals } = parseOptions(args, {
    "app-id": { type: "string" },
    "base-url": { type: "string" },
    email: { type: "string" },
    "api-key-stdin": { type: "boolean" },
    "password-stdin": { type: "boolean" },
    timeout: { type: "string" },
  });
  if (values.help) {
    process.stdout.write(KEYS_USAGE);
    return 0;
  }
  const [action, target, ...extra] = positionals;
  const needsTarget = { list: false, create: true, enable: true, disable: true, delete: true }[action];
  if (needsTarget === undefined) throw usage(action ? `unknown action '${action}'` : "no action given");
  if (needsTarget !== (target !== undefined) || extra.length > 0) {
    throw usage(needsTarget ? `${action} needs one ${action === "create" ? "name" : "key id"}` : `${action} takes no argument`);
  }
  if (values.email !== undefined && values["api-key-stdin"]) throw usage("--email and --api-key-stdin exclude each other");
  if (!values["app-id"]) throw usage("--app-id is required");
  const timeout = parseTimeout(values.timeout);
  // Each run logs in afresh: keep no users in the working directory. The SDK refuses a bad
  // base URL with a TypeError (code InvalidArgument): exit code 2.
  const app = new App({ id: values["app-id"], baseUrl: values["base-url"], timeout, metadata: { mode: MetadataMode.InMemory } });
  const login = await credentials(values);
  let user;
  try {
    user = await app.logIn(login);
  } catch (err) {
    throw withContext(err, "login failed");
  }
  const print = printer(values.json);
  try {
    switch (action) {
      case "list": {
        const list = await user.apiKeys.fetchAll();
        const text = list.map((k) => `${k._id}  ${k.disabled ? "disabled" : "enabled "}  ${k.name}`).join("\n");
        print(list, list.length ? text : "(no keys)");
        break;
      }
      case "create": {
        const key = await user.apiKeys.create(target);
        print(key, `created ${key._id} (${key.name})\nkey: ${key.key}\nStore the key now: it cannot be shown again.`);
        break;
      }
      default: {
        await user.apiKeys[action](target);
        print({ _id: target, action }, `${action}d ${target}`);
      }
    }
  } finally {
    // Ends the session on the server, failure or not; briefly, so that a server that stopped
    // answering does not hold the command for a whole --timeout a second time.
    await user.logOut({ timeout: Math.min(timeout, 5000) }).catch(() => {});
  }
  return 0;
}

// ---- main ----------------------------------------------------------------------------------

async function main(argv) {
  const [command, ...args] = argv;
  switch (command) {
    case "keys":
      return keys(args);
    // Moved with the server (0.1 had it here): say where rather than "unknown command".
    case "emulator":
      throw usage("the emulator moved to the realm-auth-server package: npx realm-auth-server emulator");
    case "-h":
    case "--help":
      process.stdout.write(USAGE);
      return 0;
    case undefined:
      throw usage("no command given (keys)");
    default:
      throw usage(`unknown command '${command}'`);
  }
}

const argv = process.argv.slice(2);
// Seen before any parsing, so that even a bad command or flag is reported as JSON.
const json = argv.includes("--json");
// The SDK's log lines (retries, say) and process warnings would be a second thing on standard
// error: the failure that ends the command says what went wrong.
setLogger(null);
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
      // The message only, no stack: the SDK's messages already say what failed, in words.
      // A bad or missing command gets the list of commands; a bad option, a pointer to its help.
      const topLevel = argv[0] !== "keys";
      const hint = exitCode !== 2 ? "" : topLevel ? `\n${USAGE}` : "(realm-auth-native keys --help)\n";
      process.stderr.write(`realm-auth-native: ${message}\n${hint}`);
    }
    process.exitCode = exitCode;
  },
);
