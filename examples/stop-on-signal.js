'use strict';
// How the examples stop on Ctrl-C (SIGINT) or SIGTERM: `close()` runs once, and the process exits
// when it is done, or after `graceMs` anyway. Ctrl-C in a terminal signals the whole process
// group, so under `npm start` the process gets it from the terminal and again from npm (which
// forwards SIGINT and SIGTERM to its script): a repeat within 250 ms is that same request; a
// later one is a second Ctrl-C and exits at once (130).

const REPEAT_MS = 250;

function stopOnSignal(close, { graceMs = 900 } = {}) {
  let stopping = 0; // when the first signal came
  const stop = () => {
    if (stopping) {
      if (Date.now() - stopping < REPEAT_MS) return;
      process.exit(130);
    }
    stopping = Date.now();
    setTimeout(() => process.exit(0), graceMs).unref(); // clean, or within graceMs anyway
    Promise.resolve()
      .then(close)
      .then(
        () => process.exit(0),
        (err) => {
          console.error(err);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

module.exports = { stopOnSignal };
