// Tests of webhook.wasm itself, outside strata: jco transpiles the component to JS, with
// preview2-shim's Node implementation of wasi:http (real requests, no gate) and a
// stand-in for strata's `host.log`, and each test calls its exports against a loopback
// sink (test/sink.mjs, its own process: the component's requests block this one).
//
//   WEBHOOK_WASM=/abs/path/webhook.wasm node --test test/webhook.test.mjs   (`make check`)
//
// What only strata does (the origin gate, connector credentials, the deadline) is tried
// with the strata binary: `make test`, and the report in README.md.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const here = dirname(fileURLToPath(import.meta.url));
const root = dirname(here);
const wasm = process.env.WEBHOOK_WASM ?? join(root, 'webhook.wasm');
// Inside node_modules, so the transpiled code finds @bytecodealliance/preview2-shim.
const build = join(root, 'node_modules', '.webhook-test');

const SECRET = 'T0AAA/B0BBB/XyZsEcReT';
let sink;
let port;
let alerter;
let lifecycle;
let logs;

const hook = (p = port) => `http://127.0.0.1:${p}/services/${SECRET}`;
const origin = (p = port) => `http://127.0.0.1:${p}`;
const ctx = (config, state) => ({
  componentId: 'c0ffee',
  componentName: 'ops',
  config: Object.entries(config),
  state: state === undefined ? undefined : new TextEncoder().encode(JSON.stringify(state)),
});
const stateOf = (result) => JSON.parse(new TextDecoder().decode(result.val));

const control = async (path, body) => {
  const r = await fetch(`${origin()}${path}`, { method: body === undefined ? 'GET' : 'POST', body: body === undefined ? undefined : JSON.stringify(body) });
  return r.status === 200 ? r.json() : null;
};
const answer = (a) => control('/__answer', a);
const seen = async () => (await control('/__seen')).filter((r) => !r.path.startsWith('/__'));
const reset = () => control('/__reset', {});

// A closed port: a listener started and stopped.
const closedPort = async () => {
  const net = await import('node:net');
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
};

// What `post` threw, as the one line strata would show.
const postError = (c, message, params = []) => {
  try {
    alerter.post(c, message, params);
  } catch (e) {
    return String(e.payload ?? e.message);
  }
  assert.fail('post succeeded');
};

const noSecretIn = (text) => {
  assert.ok(!text.includes('T0AAA') && !text.includes('XyZsEcReT'), `a secret leaked: ${text}`);
};

before(async () => {
  mkdirSync(build, { recursive: true });
  writeFileSync(join(build, 'host.js'),
    'export const lines = [];\nexport function log(level, message) { lines.push([level, message]); }\n');
  writeFileSync(join(build, 'types.js'), 'export {};\n');
  execFileSync(join(root, 'node_modules', '.bin', 'jco'), [
    'transpile', wasm, '-o', join(build, 'out'), '-q', '--no-typescript',
    '-M', 'strata:flavor/host@0.2.0=../host.js', 'strata:flavor/types@0.2.0=../types.js',
  ], { stdio: 'inherit' });
  ({ alerter, lifecycle } = await import(join(build, 'out', 'webhook.js')));
  ({ lines: logs } = await import(join(build, 'host.js')));

  sink = spawn(process.execPath, [join(here, 'sink.mjs'), '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: sink.stdout });
  port = await new Promise((resolve) => lines.once('line', (l) => resolve(JSON.parse(l).port)));
  lines.on('line', () => {});
});

after(() => {
  sink?.kill();
});

test('describe: an alerter named webhook with three optional fields and no fixed origin', () => {
  const info = lifecycle.describe();
  assert.equal(info.name, 'webhook');
  assert.equal(info.componentType, 'alerter');
  assert.equal(info.version, '0.1.0');
  assert.deepEqual(info.origins, []);
  assert.deepEqual(info.config.map((f) => [f.name, f.kind, f.required, f.default]), [
    ['webhook_url', 'url', false, undefined],
    ['channel', 'text', false, undefined],
    ['username', 'text', false, 'strata'],
  ]);
});

test('validate: accepts a webhook, a channel, @user, a channel id; no config at all', () => {
  for (const config of [
    { webhook_url: 'https://hooks.slack.com/services/T/B/X', channel: '#ops', username: 'strata bot' },
    { channel: '@alice' },
    { channel: 'C0123456789' },
    { channel: '#équipe-ops_2' },
    {},
  ]) {
    assert.doesNotThrow(() => lifecycle.validate(Object.entries(config)), JSON.stringify(config));
  }
});

test('validate: names every bad field, never quoting the URL', () => {
  let problems;
  try {
    lifecycle.validate(Object.entries({
      webhook_url: `https://user:pw@hooks.example/${SECRET}`,
      channel: '#ops, #dev',
      username: 'a\nb',
    }));
  } catch (e) {
    problems = e.payload ?? e;
  }
  assert.deepEqual(problems.map((p) => p.field), ['webhook_url', 'channel', 'username']);
  noSecretIn(JSON.stringify(problems));
  try {
    lifecycle.validate([['webhook_url', `ftp://hooks.example/${SECRET}`]]);
    assert.fail('ftp accepted');
  } catch (e) {
    const p = e.payload ?? e;
    assert.equal(p[0].field, 'webhook_url');
    noSecretIn(JSON.stringify(p));
  }
});

test('post: a Slack incoming-webhook body, with the title, the message and the run', async () => {
  await answer({ status: 200, body: 'ok' });
  await reset();
  const line = alerter.post(ctx({ webhook_url: hook(), channel: '#ops', username: 'strata' }),
    'train failed: loss <nan> & diverged', [
      ['title', 'Run failed'], ['level', 'error'], ['pipeline', 'training'], ['run-id', 'r-42'],
      ['step', 'train'], ['stack', 'prod'], ['url', 'https://strata.example/runs/r-42'],
      ['colour', 'ignored'],
    ]);
  assert.equal(line, `posted to ${origin()} (200 OK)`);
  const [req] = await seen();
  assert.equal(req.method, 'POST');
  assert.equal(req.path, `/services/${SECRET}`);
  assert.match(req.headers['content-type'], /^application\/json/);
  assert.equal(Number(req.headers['content-length']), Buffer.byteLength(req.body));
  const body = JSON.parse(req.body);
  assert.deepEqual(body, {
    text: 'Run failed\ntrain failed: loss &lt;nan&gt; &amp; diverged\nhttps://strata.example/runs/r-42',
    username: 'strata',
    channel: '#ops',
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: 'Run failed', emoji: true } },
      { type: 'section', text: { type: 'mrkdwn', text: 'train failed: loss &lt;nan&gt; &amp; diverged' } },
      { type: 'context', elements: [
        { type: 'mrkdwn', text: '*pipeline:* training' },
        { type: 'mrkdwn', text: '*run:* r-42' },
        { type: 'mrkdwn', text: '*step:* train' },
        { type: 'mrkdwn', text: '*stack:* prod' },
        { type: 'mrkdwn', text: '*level:* error' },
        { type: 'mrkdwn', text: '<https://strata.example/runs/r-42|details>' },
      ] },
    ],
    attachments: [{ color: 'danger', fallback: body.text }],
  });
  assert.ok(!JSON.stringify(body).includes('ignored'));
  for (const [, message] of logs) {
    noSecretIn(message);
  }
});

test('post: a bare message: default username, no channel, header or context; colour by level', async () => {
  await reset();
  alerter.post(ctx({ webhook_url: hook() }), 'hello', []);
  const body = JSON.parse((await seen())[0].body);
  assert.deepEqual(body, {
    text: 'hello',
    username: 'strata',
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'hello' } }],
    attachments: [{ color: '#439FE0', fallback: 'hello' }],
  });
  for (const [level, color] of [['success', 'good'], ['warning', 'warning'], ['error', 'danger'], ['loud', '#439FE0']]) {
    await reset();
    alerter.post(ctx({ webhook_url: hook() }), 'x', [['level', level]]);
    assert.equal(JSON.parse((await seen())[0].body).attachments[0].color, color, level);
  }
});

test('post: a long message fits Slack\'s limits and arrives whole', async () => {
  await reset();
  const long = 'é&'.repeat(4000);
  alerter.post(ctx({ webhook_url: hook() }), long, [['title', 'T'.repeat(400)], ['pipeline', 'p'.repeat(1000)]]);
  const body = JSON.parse((await seen())[0].body);
  const [header, section, context] = body.blocks;
  assert.equal(header.text.text.length, 150);
  assert.ok(section.text.text.length <= 3000 && section.text.text.endsWith('…'));
  assert.ok(!/&[a-z]*…$/.test(section.text.text), 'cut inside an escape');
  assert.ok(context.elements[0].text.length <= 300);
  assert.ok(body.text.length > 20000);
});

test('post: a title alone is a message; nothing at all is an error, sent nowhere', async () => {
  await reset();
  alerter.post(ctx({ webhook_url: hook() }), '  ', [['title', 'Deployed']]);
  const body = JSON.parse((await seen())[0].body);
  assert.equal(body.text, 'Deployed');
  assert.deepEqual(body.blocks.map((b) => b.type), ['header']);
  await reset();
  assert.match(postError(ctx({ webhook_url: hook() }), ' ', []), /nothing to post/);
  assert.equal((await seen()).length, 0);
});

test('post: the connector\'s endpoint is the URL when webhook_url is not given', async () => {
  await reset();
  const line = alerter.post(ctx({ 'connector.name': 'hooks', 'connector.type': 'bearer', 'connector.endpoint': hook() }), 'via connector', []);
  assert.equal(line, `posted to ${origin()} (200 OK)`);
  assert.equal((await seen())[0].path, `/services/${SECRET}`);
});

test('post: no URL and no connector: every call says what to pass', () => {
  const c = ctx({ channel: '#ops' });
  assert.match(postError(c, 'x'), /--webhook_url=URL.*connector/);
  assert.equal(lifecycle.provision(c).tag, 'err');
  assert.equal(lifecycle.resume(c).tag, 'err');
  assert.throws(() => lifecycle.preparePipelineDeployment(c, []));
  assert.equal(lifecycle.status(c).running, false);
  // down always works
  assert.equal(lifecycle.suspend(c).tag, 'ok');
  assert.equal(lifecycle.deprovision(c).tag, 'ok');
});

test('post: a non-2xx answer is one line with the status, the body and what to do', async () => {
  const cases = [
    [404, 'no_service', /answered 404 Not Found: no_service; the webhook was removed .*`strata alerter update ops --webhook_url=URL`$/],
    [410, 'channel_is_archived', /answered 410 Gone: channel_is_archived; the webhook was removed/],
    [403, 'invalid_token', /answered 403 Forbidden: invalid_token; .*check the secret in `webhook_url`/],
    [401, '', /answered 401 Unauthorized: \(empty body\); .*check the secret in `webhook_url`/],
    [400, 'invalid_payload', /answered 400 Bad Request: invalid_payload; .*channel/],
    [429, 'rate_limited', /rate-limiting/],
    [500, 'rollup_error', /answered 500 Internal Server Error: rollup_error; the service failed: try again/],
    [503, 'x'.repeat(500), /answered 503 Service Unavailable: x{200}; the service failed/],
  ];
  for (const [status, body, want] of cases) {
    await answer({ status, body });
    const line = postError(ctx({ webhook_url: hook() }), 'x');
    assert.match(line, want, `${status}`);
    assert.ok(line.startsWith(`webhook ${origin()} answered ${status}`), line);
    assert.ok(!line.includes('\n'));
  }
  await answer({ status: 401, body: 'invalid_auth' });
  const viaConnector = ctx({ 'connector.name': 'hooks', 'connector.type': 'bearer', 'connector.endpoint': hook() });
  assert.match(postError(viaConnector, 'x'),
    /answered 401 Unauthorized: invalid_auth; .*token of connector `hooks` \(`strata service-connector verify hooks`\)$/);
  await answer({ status: 200, body: 'ok' });
});

test('post: a redirect is not followed, and its target shows as an origin only', async () => {
  await reset();
  await answer({ status: 302, body: '', headers: { location: `https://hooks.elsewhere.example/services/${SECRET}` } });
  const line = postError(ctx({ webhook_url: hook() }), 'x');
  assert.match(line, /answered 302 Found: .*follows no redirect.*https:\/\/hooks\.elsewhere\.example\)/);
  noSecretIn(line);
  assert.equal((await seen()).length, 1);
  await answer({ status: 200, body: 'ok' });
});

test('post: a server echoing the URL does not get the secret into the error', async () => {
  await answer({ status: 404, body: `no webhook at ${hook()} (path /services/${SECRET})` });
  const line = postError(ctx({ webhook_url: hook() }), 'x');
  noSecretIn(line);
  assert.match(line, /no webhook at http:\/\/127\.0\.0\.1:\d+ /);
  await answer({ status: 200, body: 'ok' });
});

test('post: no server: the origin, why, and that it may be down; never the path', async () => {
  const p = await closedPort();
  const line = postError(ctx({ webhook_url: hook(p) }), 'x');
  assert.equal(line.split(';')[0], `could not post to webhook ${origin(p)}: connection refused`);
  assert.match(line, /server may be down/);
  noSecretIn(line);
});

test('lifecycle: nothing to create or start; the phase is kept in the state', () => {
  logs.length = 0;
  const c = ctx({ webhook_url: hook() });
  const provisioned = lifecycle.provision(c);
  assert.equal(provisioned.tag, 'ok');
  assert.equal(stateOf(provisioned).phase, 'provisioned');
  const running = lifecycle.resume(ctx({ webhook_url: hook() }, stateOf(provisioned)));
  assert.equal(stateOf(running).phase, 'running');
  const suspended = lifecycle.suspend(ctx({ webhook_url: hook() }, stateOf(running)));
  assert.equal(stateOf(suspended).phase, 'provisioned');
  const gone = lifecycle.deprovision(ctx({ webhook_url: hook() }, stateOf(suspended)));
  assert.equal(stateOf(gone).phase, 'registered');
  assert.deepEqual(logs.map(([, m]) => m.split(':')[0]), [
    'a webhook has nothing to create', 'a webhook has nothing to start',
    'a webhook has nothing to stop', 'a webhook has nothing to remove',
  ]);
  for (const [, m] of logs) {
    noSecretIn(m);
  }
  assert.doesNotThrow(() => lifecycle.preparePipelineDeployment(c, [['a', '1']]));
});

test('status: HEAD, then GET if HEAD is refused; below 500 is reachable; never a POST', async () => {
  const up = ctx({ webhook_url: hook() }, { phase: 'running' });
  await reset();
  await answer({ status: 200, byMethod: { HEAD: 405, GET: 400 } });
  assert.deepEqual(lifecycle.status(up), {
    provisioned: true, running: true, detail: `${origin()}: answers (400); running`,
  });
  assert.deepEqual((await seen()).map((r) => r.method), ['HEAD', 'GET']);

  await answer({ status: 503 });
  const failing = lifecycle.status(up);
  assert.equal(failing.running, true);
  assert.equal(failing.detail, `${origin()}: failing (503 Service Unavailable); running`);

  await answer({ status: 200 });
  assert.deepEqual(lifecycle.status(ctx({ webhook_url: hook() }, { phase: 'provisioned' })), {
    provisioned: true, running: false, detail: `${origin()}: answers (200); provisioned, not running`,
  });
  assert.deepEqual(lifecycle.status(ctx({ webhook_url: hook() })), {
    provisioned: false, running: false, detail: `${origin()}: answers (200); not provisioned`,
  });
  assert.ok((await seen()).every((r) => r.method !== 'POST'));

  const p = await closedPort();
  const down = lifecycle.status(ctx({ webhook_url: hook(p) }, { phase: 'running' }));
  assert.deepEqual(down, {
    provisioned: true, running: true, detail: `${origin(p)}: unreachable (connection refused); running`,
  });
});
