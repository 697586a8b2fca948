/**
 * Signal handling of the `salt-transfer` command, installed as the command's first import so that a
 * Ctrl-C (SIGINT) or SIGTERM that arrives while the rest of the program (and the native addon) is
 * still loading is already an orderly abort: exit 130, nothing written. Does nothing when the CLI
 * module is imported as a library (e.g. by the tests).
 */
import { realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Fires when the command is interrupted; main() runs with it. */
export const cliAbort = new AbortController();

/** Set once main() has reported its result: a later signal has nothing left to abort. */
export const cliState = { finished: false };

/** True when this process runs the built command (dist/cli.js, one folder up from this module). */
export function invokedAsCommand(): boolean {
  if (!process.argv[1]) return false;
  try {
    return (
      realpathSync(process.argv[1]) === realpathSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'cli.js'))
    );
  } catch {
    return false;
  }
}

if (invokedAsCommand()) {
  let interrupted = false;
  const onSignal = (name: string) => {
    if (cliState.finished) return;
    if (interrupted) {
      process.stderr.write(
        'salt-transfer: error [E_ABORTED]: interrupted twice, exiting at once (a temporary folder may remain; the next run into the same folder removes it)\n',
      );
      process.exit(130);
    }
    interrupted = true;
    process.stderr.write(`\nsalt-transfer: ${name}, aborting (press Ctrl-C again to exit at once) ...\n`);
    cliAbort.abort();
  };
  process.on('SIGINT', () => onSignal('interrupted'));
  process.on('SIGTERM', () => onSignal('terminated'));
}
