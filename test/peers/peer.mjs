// SPDX-License-Identifier: MIT
// What every launcher in test/peers shares: its command line, and how it
// stops (a signal, or the end of its stdin lifeline, as the suite closes it).

// --state-dir DIR [--stdin-lifeline] [--short SECONDS] [--port 0 (ignored: any free port)]
export function peerOptions(name, defaults) {
  const opts = { stateDir: null, lifeline: false, ...defaults };
  for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (a === '--state-dir') opts.stateDir = process.argv[++i];
    else if (a === '--stdin-lifeline') opts.lifeline = true;
    else if (a === '--short') opts.short = Number(process.argv[++i]);
    else if (a === '--port') i++;
    else {
      process.stderr.write(`${name}: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  if (!opts.stateDir) {
    process.stderr.write(`${name}: --state-dir DIR is required\n`);
    process.exit(2);
  }
  return opts;
}

export function stopWith(server, lifeline) {
  const stop = () => {
    server.close();
    server.closeAllConnections?.();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (lifeline) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
}
