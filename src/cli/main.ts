#!/usr/bin/env node
import { run } from './program';

// `och ... | head` closes the pipe early: that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

run(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  env: process.env,
  tty: process.stdout.isTTY === true,
  columns: process.stdout.columns,
}).then((code) => {
  // Not process.exit(): output written to a pipe must be flushed first.
  process.exitCode = code;
}, (err: unknown) => {
  process.stderr.write(`och: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 70;
});
