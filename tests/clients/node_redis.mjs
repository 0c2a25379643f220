// node-redis as a new user meets it: createClient({ url: 'redis://HOST:PORT' }), nothing else
// (an 'error' listener, which node-redis requires, records each error as a warning).
//
//   NODE_PATH=.cache/clients/node_modules node tests/clients/node_redis.mjs HOST:PORT \
//     [--timeout S] [--settings nutcracker] [--package redis-6]
//
// `--settings nutcracker` adds only what docs/clients.md says nutcracker needs. Prints one
// JSON line (see harness.mjs); exit 0 only when every step passed.

import { EVAL_SCRIPT, Run, expect } from './harness.mjs';

const run = new Run('node-redis', 'redis');
const { createClient } = run.module;

const host = run.host.includes(':') ? `[${run.host}]` : run.host;
const options = { url: `redis://${host}:${run.port}` };
if (run.settings === 'nutcracker') {
  // Both send CLIENT SETINFO unless told not to. node-redis 6 opens with HELLO 3 unless RESP is
  // 2; node-redis 5 sends HELLO whenever RESP is set at all (even RESP: 2), so not there.
  options.disableClientInfo = true;
  if (Number(run.version.split('.')[0]) >= 6) options.RESP = 2;
}

const client = createClient(options);
client.on('error', run.onError());
const { keys, missing, evalKey } = run;
const [a, b, c] = run.pipeKeys;

await run.runSteps([
  [
    'connect',
    async () => {
      await client.connect();
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
      expect('MGET', await client.mGet([...keys, missing]), expected);
    },
  ],
  ['del', async () => expect('DEL', await client.del([...keys, missing]), keys.length)],
  [
    'pipeline',
    async () => {
      const replies = await client
        .multi()
        .set(a, '1')
        .set(b, '2')
        .incrBy(a, 5)
        .get(a)
        .mGet([a, b, c])
        .exists([a, b])
        .del([a, b])
        .get(a)
        .execAsPipeline();
      expect('pipeline', replies, ['OK', 'OK', 6, '6', ['6', '2', null], 2, 2, null]);
    },
  ],
  [
    'eval',
    async () => {
      const reply = await client.eval(EVAL_SCRIPT, { keys: [evalKey], arguments: ['e1'] });
      expect('EVAL', reply, 'OK');
      expect('GET after EVAL', await client.get(evalKey), 'e1');
      expect('DEL after EVAL', await client.del(evalKey), 1);
    },
  ],
  [
    'close',
    async () => {
      // After a failure the client may still be reconnecting: close() would wait on it.
      if (run.failed() === undefined) await client.close();
      else client.destroy();
    },
  ],
]);
run.finish();
