// webhook.wasm in a real strata, in throwaway homes, against loopback sinks:
//
//   STRATA=/path/to/strata WEBHOOK_WASM=/abs/webhook.wasm node --test test/strata.test.mjs
//
// (`make test STRATA=…`). What the gate does is checked here: the origin granted from
// `webhook_url` or the connector, the connector's `Authorization` added by strata, no
// secret in what the flavor says. `strata alerter post` is tried when the binary has it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));
const STRATA = process.env.STRATA ?? 'strata';
const wasm = process.env.WEBHOOK_WASM ?? join(dirname(here), 'webhook.wasm');
const SECRET = 'T0AAA/B0BBB/XyZsEcReT';
const TOKEN = 'tok-CANARY-4242';

let home;
let sink;
let port;
const sinks = [];

const startSink = async () => {
  const child = spawn(process.execPath, [join(here, 'sink.mjs'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  sinks.push(child);
  const lines = createInterface({ input: child.stdout });
  const p = await new Promise((resolve) => lines.once('line', (l) => resolve(JSON.parse(l).port)));
  lines.on('line', () => {});
  return { child, port: p };
};
const control = async (path, body) => {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { method: body === undefined ? 'GET' : 'POST', body: body === undefined ? undefined : JSON.stringify(body) });
  return r.status === 200 ? r.json() : null;
};
const seen = async () => (await control('/__seen')).filter((r) => !r.path.startsWith('/__'));

const strata = (...args) => {
  const r = spawnSync(STRATA, args, { env: { ...process.env, STRATA_HOME: home, STRATA_OUTPUT: 'table' }, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};
const ok = (...args) => {
  const r = strata(...args);
  assert.equal(r.code, 0, `strata ${args.join(' ')}:\n${r.out}`);
  return r.out;
};
const json = (...args) => JSON.parse(ok('--output', 'json', ...args));
// A component's live status, as `describe` shows it.
const statusOf = (name) => {
  const d = json('alerter', 'describe', name);
  assert.ok(d.status.Ok, JSON.stringify(d.status));
  return d.status.Ok;
};

// What the flavor said (its answers and its own log lines), without strata's log of each
// request, which names the path: nothing of the flavor's may hold a secret.
const flavorWords = (out) => out.split('\n').filter((l) => !/: (info|warn): http [A-Z]+ http/.test(l)).join('\n');
const noSecretIn = (out) => {
  const words = flavorWords(out);
  for (const s of ['T0AAA', 'XyZsEcReT', TOKEN]) {
    assert.ok(!words.includes(s), `\`${s}\` leaked:\n${words}`);
  }
};

const hasPost = () => strata('alerter', 'post', '--help').code === 0;

before(async () => {
  home = mkdtempSync(join(tmpdir(), 'webhook-strata-'));
  ({ child: sink, port } = await startSink());
  ok('init');
  ok('alerter', 'flavor', 'register', wasm);
});

after(() => {
  for (const s of sinks) {
    s.kill();
  }
  rmSync(home, { recursive: true, force: true });
});

test('strata flavor test passes with webhook_url pointed at a sink', () => {
  const r = spawnSync(STRATA, ['flavor', 'test', wasm, `--webhook_url=http://127.0.0.1:${port}/services/${SECRET}`, '--channel=#ops'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /answers \(200\); running/);
});

test('a stack with the alerter comes up, and describe reports the server', async () => {
  ok('alerter', 'register', 'ops', '--flavor=webhook', `--webhook_url=http://127.0.0.1:${port}/services/${SECRET}`, '--channel=#ops');
  ok('stack', 'register', 'with-alerter', '-o', 'default', '-a', 'default', '-l', 'ops', '--set');
  const up = ok('stack', 'up', '--verbose');
  assert.match(up, /a webhook has nothing to create: ops posts to http:\/\/127\.0\.0\.1:\d+\n/);
  noSecretIn(up);
  assert.deepEqual(statusOf('ops'), {
    provisioned: true, running: true, detail: `http://127.0.0.1:${port}: answers (200); running`,
  });
  assert.ok((await seen()).every((r) => r.method === 'HEAD'), 'status posted something');
});

test('post: the Slack body reaches the sink; errors name the origin only', { skip: !hasPost() && 'this strata has no `alerter post`' }, async () => {
  await control('/__reset', {});
  const out = ok('alerter', 'post', 'ops', 'loss is <nan>', '--param', 'title=Run failed', '--param', 'level=error',
    '--param', 'pipeline=training', '--param', 'run-id=r-7', '--verbose');
  assert.match(out, new RegExp(`posted to http://127\\.0\\.0\\.1:${port} \\(200 OK\\)`));
  noSecretIn(out);
  const [req] = await seen();
  assert.equal(req.method, 'POST');
  const body = JSON.parse(req.body);
  assert.equal(body.text, 'Run failed\nloss is &lt;nan&gt;');
  assert.equal(body.channel, '#ops');
  assert.deepEqual(body.blocks.map((b) => b.type), ['header', 'section', 'context']);
  assert.equal(body.attachments[0].color, 'danger');

  await control('/__answer', { status: 404, body: 'no_service' });
  const gone = strata('alerter', 'post', 'ops', 'x');
  assert.equal(gone.code, 1);
  assert.match(gone.out, /webhook http:\/\/127\.0\.0\.1:\d+ answered 404 Not Found: no_service; the webhook was removed/);
  noSecretIn(gone.out);
  await control('/__answer', { status: 200, body: 'ok' });
});

test('a connector: its endpoint is the webhook, strata adds the token, the flavor never shows it', async () => {
  ok('service-connector', 'register', 'hooks', '--type', 'bearer', `--endpoint=http://127.0.0.1:${port}/services/${SECRET}`, `--token=${TOKEN}`);
  ok('alerter', 'register', 'via-hooks', '--flavor=webhook', '--connector=hooks');
  await control('/__reset', {});
  const up = ok('alerter', 'up', 'via-hooks', '--verbose');
  noSecretIn(up);
  assert.equal(statusOf('via-hooks').running, true);
  const [head] = await seen();
  assert.equal(head.headers.authorization, `Bearer ${TOKEN}`);
  if (hasPost()) {
    await control('/__reset', {});
    noSecretIn(ok('alerter', 'post', 'via-hooks', 'hello', '--verbose'));
    const [post] = await seen();
    assert.equal(post.method, 'POST');
    assert.equal(post.headers.authorization, `Bearer ${TOKEN}`);
  }
});

test('no URL and no connector: up fails saying what to pass; down still works', () => {
  ok('alerter', 'register', 'nowhere', '--flavor=webhook');
  const r = strata('alerter', 'up', 'nowhere');
  assert.equal(r.code, 1);
  assert.match(r.out, /--webhook_url=URL.*connector/);
  ok('alerter', 'down', 'nowhere', '--force');
});

test('the server gone: describe says unreachable, naming the origin only', async () => {
  sink.kill();
  await new Promise((r) => sink.once('exit', r));
  // (`describe` itself shows the configuration, webhook_url and all: only the status is the flavor's.)
  assert.deepEqual(statusOf('ops'), {
    provisioned: true, running: true, detail: `http://127.0.0.1:${port}: unreachable (connection refused); running`,
  });
  if (hasPost()) {
    const r = strata('alerter', 'post', 'ops', 'x');
    assert.equal(r.code, 1);
    assert.match(r.out, new RegExp(`could not post to webhook http://127\\.0\\.0\\.1:${port}: connection refused; the server may be down`));
    noSecretIn(r.out);
  }
});
