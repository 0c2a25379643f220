// ioredis as a new user meets it: new Redis(PORT, HOST), nothing else (an 'error' listener
// records each error event as a warning; without one ioredis prints them to stderr).
//
//   NODE_PATH=.cache/clients/node_modules node tests/clients/ioredis.mjs HOST:PORT \
//     [--timeout S] [--settings nutcracker]
//
// `--settings nutcracker` adds only what docs/clients.md says nutcracker needs. Prints one
// JSON line (see harness.mjs); exit 0 only when every step passed.

import { EVAL_SCRIPT, Run, expect } from './harness.mjs';

const run = new Run('ioredis', 'ioredis');
const Redis = run.module.default ?? run.module;

const args = [run.port, run.host];
if (run.settings === 'nutcracker') {
  args.push({ protocol: 2, disableClientInfo: true, enableReadyCheck: false });
}
const client = new Redis(...args);
client.on('error', run.onError());
const { keys, missing, evalKey } = run;
const [a, b, c] = run.pipeKeys;

// 'ready', or the connection's first 'close' before it (the server hung up on the handshake).
function ready() {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    client.once('ready', resolve);
    client.once('close', () => {
      if (client.status !== 'ready') {
        reject(new Error(`connection closed before 'ready' (status ${client.status})`));
      }
    });
  });
}

await run.runSteps([
  [
    'connect',
    async () => {
      await ready();
      expect('PING', await client.ping(), 'PONG');
    },
  ],
  [
    'set',
    async () => {
      for (const [i, key] of keys.entries()) expect(`SET ${key}`, await client.set(key, `v${i}`), 'OK');
    },
  ],
  [
    'get',
    async () => {
      for (const [i, key] of keys.entries()) expect(`GET ${key}`, await client.get(key), `v${i}`);
    },
  ],
  [
    'mget',
    async () => {
      const expected = [...keys.map((_, i) => `v${i}`), null];
      expect('MGET', await client.mget(...keys, missing), expected);
    },
  ],
  ['del', async () => expect('DEL', await client.del(...keys, missing), keys.length)],
  [
    'pipeline',
    async () => {
      const results = await client
        .pipeline()
        .set(a, '1')
        .set(b, '2')
        .incrby(a, 5)
        .get(a)
        .mget(a, b, c)
        .exists(a, b)
        .del(a, b)
        .get(a)
        .exec();
      const errors = results.filter(([err]) => err).map(([err]) => String(err));
      expect('pipeline errors', errors, []);
      const replies = results.map(([, reply]) => reply);
      expect('pipeline', replies, ['OK', 'OK', 6, '6', ['6', '2', null], 2, 2, null]);
    },
  ],
  [
    'eval',
    async () => {
      expect('EVAL', await client.eval(EVAL_SCRIPT, 1, evalKey, 'e1'), 'OK');
      expect('GET after EVAL', await client.get(evalKey), 'e1');
      expect('DEL after EVAL', await client.del(evalKey), 1);
    },
  ],
  [
    'close',
    async () => {
      // After a failure the client may still be reconnecting: quit() would wait on it.
      // nutcracker answers QUIT by closing the connection without +OK, which makes quit()
      // reject with "Connection is closed.": docs/clients.md says to use disconnect() there.
      if (run.failed() !== undefined || run.settings === 'nutcracker') client.disconnect();
      else expect('QUIT', await client.quit(), 'OK');
    },
  ],
]);
run.finish();
