#!/usr/bin/env node
// The package's command line. `realm-auth-native emulator [options]` runs the
// App Services emulator in the foreground until Ctrl-C or SIGTERM.
"use strict";

const { Emulator } = require("..");

const USAGE = `Usage: realm-auth-native <command> [options]

Commands:
  emulator [options]   run a local App Services emulator (--help for its options)
`;

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

async function main(argv) {
  const [command, ...args] = argv;
  switch (command) {
    case "emulator":
      return emulator(args);
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
    process.stderr.write(`realm-auth-native: ${err.message}\n`);
    process.exitCode = 1;
  },
);
