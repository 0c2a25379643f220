// What the node client scripts share: the command line, the keys, the step bookkeeping, the
// capture of everything written to stderr (console.warn/error, process warnings) and of
// 'error' events, the deadline, and the one JSON line they print. The Python twin is
// script_support.py; matrix.py reads the report of both:
//   {"client", "version", "settings", "endpoint", "ok", "steps": {step: "ok" | error},
//    "warnings": [...], "elapsed_ms"}
// Exit 0 only when every step passed, 3 when the deadline expired (the step that hung says
// so), 1 otherwise.
//
// Client packages come from NODE_PATH (matrix.py points it at .cache/clients/node_modules,
// where `make clients` installs tests/clients/package-lock.json).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export const STEPS = ['connect', 'set', 'get', 'mget', 'del', 'pipeline', 'eval', 'close'];
export const KEY_COUNT = 20;
export const EVAL_SCRIPT = "return redis.call('SET', KEYS[1], ARGV[1])";
const SETTINGS = ['default', 'nutcracker'];
const EXIT_FAILED = 1;
const EXIT_HUNG = 3;

const require = createRequire(import.meta.url);

export class MismatchError extends Error {}

// Throw MismatchError unless `actual` deep-equals `expected` (Buffers compared as strings).
export function expect(what, actual, expected) {
  const a = JSON.stringify(plain(actual));
  const e = JSON.stringify(plain(expected));
  if (a !== e) throw new MismatchError(`${what}: expected ${e}, got ${a}`);
}

function plain(value) {
  if (Buffer.isBuffer(value)) return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  return value === undefined ? null : value;
}

export function describe(err) {
  if (err instanceof Error) {
    const name = err.constructor?.name || err.name || 'Error';
    return err.message ? `${name}: ${err.message}` : name;
  }
  return String(err);
}

function splitEndpoint(text) {
  const cut = text.lastIndexOf(':');
  const host = text.slice(0, cut).replace(/^\[|\]$/g, '');
  const port = Number(text.slice(cut + 1));
  if (cut <= 0 || !Number.isInteger(port)) {
    process.stdout.write(`endpoint ${JSON.stringify(text)} is not host:port\n`);
    process.exit(2);
  }
  return { host, port };
}

function parseArgs(argv) {
  const args = { endpoint: null, timeout: 10, settings: 'default', package: null };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--timeout') args.timeout = Number(argv[++i]);
    else if (argv[i] === '--settings') args.settings = argv[++i];
    else if (argv[i] === '--package') args.package = argv[++i];
    else args.endpoint = argv[i];
  }
  if (!args.endpoint || !(args.timeout > 0) || !SETTINGS.includes(args.settings)) {
    process.stdout.write(
      'usage: node SCRIPT HOST:PORT [--timeout S] [--settings default|nutcracker] [--package NAME]\n',
    );
    process.exit(2);
  }
  return args;
}

export class Run {
  // `packageName` is the npm package to load unless --package names another (an npm alias
  // such as "redis-6" for a second major version side by side).
  constructor(client, packageName) {
    const args = parseArgs(process.argv.slice(2));
    packageName = args.package ?? packageName;
    this.client = client;
    this.endpoint = args.endpoint;
    Object.assign(this, splitEndpoint(args.endpoint));
    this.timeout = args.timeout;
    this.settings = args.settings;
    this.steps = {};
    this.warnings = [];
    this.current = null;
    this.reported = false;
    this.started = Date.now();
    // No braces: a hash_tag "{}" would put every key on one shard.
    this.prefix = `rk-matrix:${client}:${process.pid}:${randomBytes(4).toString('hex')}:`;
    this.keys = Array.from({ length: KEY_COUNT }, (_, i) => `${this.prefix}k${i}`);
    this.missing = `${this.prefix}missing`;
    this.pipeKeys = ['a', 'b', 'c'].map((n) => `${this.prefix}p${n}`);
    this.evalKey = `${this.prefix}eval`;
    this.#captureStderr();
    this.timer = setTimeout(() => this.#expired(), this.timeout * 1000);
    this.version = packageVersion(packageName);
    try {
      this.module = require(packageName);
    } catch (err) {
      this.steps.connect = `cannot load ${packageName} (NODE_PATH=${process.env.NODE_PATH}): ${describe(err)}`;
      this.finish();
    }
  }

  // Everything written to stderr (console.warn, console.error, the default printing of
  // process warnings, a library's own writes) becomes a warning line instead.
  #captureStderr() {
    process.stderr.write = (chunk, encoding, callback) => {
      const text = String(chunk).trimEnd();
      if (text) this.warnings.push(`stderr: ${text}`);
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') done();
      return true;
    };
    process.on('warning', (w) => this.warnings.push(`process warning: ${w.name}: ${w.message}`));
    process.on('unhandledRejection', (err) => {
      this.warnings.push(`unhandled rejection: ${describe(err)}`);
    });
  }

  // A listener for a client's 'error' events: each one is a warning line.
  onError(event = 'error') {
    return (err) => this.warnings.push(`'${event}' event: ${describe(err)}`);
  }

  failed() {
    return STEPS.find((name) => name in this.steps && this.steps[name] !== 'ok');
  }

  // Run each [name, async fn] in order; after a failure only `close` still runs.
  async runSteps(steps) {
    for (const [name, step] of steps) {
      const earlier = this.failed();
      if (earlier !== undefined && name !== 'close') {
        this.steps[name] = `not run: ${earlier} failed`;
        continue;
      }
      this.current = name;
      try {
        await step();
        this.steps[name] = 'ok';
      } catch (err) {
        this.steps[name] = describe(err);
      }
      this.current = null;
    }
  }

  #expired() {
    const step = this.current || 'connect';
    this.steps[step] = `timeout: no reply within the script's ${this.timeout} s (hung)`;
    this.#report();
    process.exit(EXIT_HUNG);
  }

  #report() {
    this.reported = true;
    for (const name of STEPS) {
      if (!(name in this.steps)) this.steps[name] = 'not run: the deadline expired';
    }
    const report = {
      client: this.client,
      version: this.version,
      settings: this.settings,
      endpoint: this.endpoint,
      ok: STEPS.every((name) => this.steps[name] === 'ok'),
      steps: Object.fromEntries(STEPS.map((name) => [name, this.steps[name]])),
      warnings: this.warnings,
      elapsed_ms: Date.now() - this.started,
    };
    process.stdout.write(JSON.stringify(report) + '\n');
  }

  // Print the report and exit: 0 only when every step passed.
  finish() {
    clearTimeout(this.timer);
    this.#report();
    const ok = STEPS.every((name) => this.steps[name] === 'ok');
    process.exit(ok ? 0 : EXIT_FAILED);
  }
}

// The installed version of `name`, from its package.json where require would find it.
function packageVersion(name) {
  for (const dir of require.resolve.paths(name) || []) {
    try {
      return JSON.parse(readFileSync(join(dir, name, 'package.json'), 'utf8')).version;
    } catch {
      // not in this directory
    }
  }
  return 'unknown';
}
