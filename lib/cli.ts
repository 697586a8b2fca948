#!/usr/bin/env node
/**
 * The `salt-transfer` command (dist/cli.js). This entry loads nothing but Node built-ins before it
 * installs the SIGINT/SIGTERM handlers, so that an interrupt arriving while the program and its
 * native addon load is already an orderly abort (exit 130, nothing written); then it loads the
 * program (./cli/main.js, also the module the tests import) and runs it. See docs/cli.md.
 */
import { cliAbort, cliState, invokedAsCommand } from './cli/signals.js';

if (invokedAsCommand()) {
  // A closed pipe (e.g. `salt-transfer info | head -1`) ends the output quietly instead of with a stack.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  const { main } = await import('./cli/main.js');
  const code = await main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    signal: cliAbort.signal,
  });
  cliState.finished = true;
  // Exit now rather than when the event loop drains: Node restores the default signal actions while
  // it tears down, so a Ctrl-C in that window would end the process by SIGINT instead of with the
  // code main() reported. Output to pipes and files is written synchronously, so nothing is cut off.
  process.exit(code);
}
