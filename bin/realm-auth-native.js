#!/usr/bin/env node
// The package's command line:
//   realm-auth-native emulator [options]    run the App Services emulator until Ctrl-C or SIGTERM
//   realm-auth-native keys <command> ...     manage a user's API keys on any compatible server
"use strict";

const { parseArgs } = require("node:util");
const { App, Credentials, Emulator, MetadataMode } = require("..");

const USAGE = `Usage: realm-auth-native <command> [options]

Commands:
  emulator [options]         run a local App Services emulator (--help for its options)
  keys <action> [options]    list, create, enable, disable or delete a user's API keys
                             (realm-auth-native keys --help)
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
  --api-key-stdin      log in with an API key read from standard input
                       (without --email, the key is read from $REALM_AUTH_API_KEY)
  --password-stdin     read the password from standard input
  --timeout <ms>       deadline of each call (default 60000)
  --json               print JSON
  -h, --help           print this help

Secrets are never taken from the command line, where other users and shell histories can see them.

Exit codes: 0 done, 1 the server or the network failed, 2 bad usage, 3 login refused.
`;

/** A failure with the exit code it maps to. */
class Exit extends Error {
  constructor(code, message) {
    super(message);
    this.exitCode = code;
  }
}

async function emulator(args) {
  let options;
  try {
    options = Emulator.parseArgs(args);
  } catch (err) {
    process.stderr.write(`realm-auth-native emulator: ${err.message}\n\n${Emulator.usage()}`);
    return 2;
  }
  if (options === null) {
    process.stdout.write(Emulator.usage());
    return 0;
  }
  const running = await Emulator.start(options);
  process.stdout.write(`${running.listeningLine()}\n`);
  // The server runs on the addon's threads, which do not keep Node alive: a
  // timer does, until a signal arrives.
  const keepAlive = setInterval(() => {}, 1 << 30);
  await new Promise((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  clearInterval(keepAlive);
  await running.stop();
  return 0;
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

async function credentials(values) {
  if (values.email !== undefined) {
    const password = values["password-stdin"] ? await readStdin() : process.env.REALM_AUTH_PASSWORD;
    if (!password) throw new Exit(2, "no password: set REALM_AUTH_PASSWORD or pass --password-stdin");
    return Credentials.emailPassword(values.email, password);
  }
  const key = values["api-key-stdin"] ? await readStdin() : process.env.REALM_AUTH_API_KEY;
  if (!key) throw new Exit(2, "no credentials: use --email, --api-key-stdin, or set REALM_AUTH_API_KEY");
  return Credentials.apiKey(key);
}

function parseKeysArgs(args) {
  // Secrets on the command line are refused outright, before anything else.
  for (const arg of args) {
    if (/^--(password|api-key|key)(=|$)/.test(arg)) {
      throw new Exit(2, `${arg.split("=")[0]} is not accepted: secrets are read from the environment or standard input`);
    }
  }
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        "app-id": { type: "string" },
        "base-url": { type: "string" },
        email: { type: "string" },
        "api-key-stdin": { type: "boolean" },
        "password-stdin": { type: "boolean" },
        timeout: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    throw new Exit(2, err.message);
  }
}

async function keys(args) {
  const { values, positionals } = parseKeysArgs(args);
  if (values.help) {
    process.stdout.write(KEYS_USAGE);
    return 0;
  }
  const [action, target, ...extra] = positionals;
  const needsTarget = { list: false, create: true, enable: true, disable: true, delete: true }[action];
  if (needsTarget === undefined) throw new Exit(2, action ? `unknown action '${action}'` : "no action given");
  if (needsTarget !== (target !== undefined) || extra.length > 0) {
    throw new Exit(2, needsTarget ? `${action} needs one ${action === "create" ? "name" : "key id"}` : `${action} takes no argument`);
  }
  if (!values["app-id"]) throw new Exit(2, "--app-id is required");
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  let app;
  try {
    // Each run logs in afresh: keep no users in the working directory.
    app = new App({ id: values["app-id"], baseUrl: values["base-url"], timeout, metadata: { mode: MetadataMode.InMemory } });
  } catch (err) {
    throw new Exit(2, err.message);
  }
  const login = await credentials(values);
  let user;
  try {
    user = await app.logIn(login);
  } catch (err) {
    throw new Exit(err.statusCode === 401 ? 3 : 1, `login failed: ${err.message}`);
  }
  const print = (json, text) => process.stdout.write(`${values.json ? JSON.stringify(json) : text}\n`);
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
  await user.logOut().catch(() => {});
  return 0;
}

async function main(argv) {
  const [command, ...args] = argv;
  switch (command) {
    case "emulator":
      return emulator(args);
    case "keys":
      return keys(args);
    case undefined:
    case "-h":
    case "--help":
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`realm-auth-native: unknown command '${command}'\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    // A TypeError is an argument the SDK refused (a malformed key id, say).
    const code = err instanceof Exit ? err.exitCode : err instanceof TypeError ? 2 : 1;
    process.stderr.write(`realm-auth-native: ${err.message}\n${code === 2 ? "(realm-auth-native keys --help)\n" : ""}`);
    process.exitCode = code;
  },
);
