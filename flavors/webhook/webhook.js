// webhook: strata's alerter for Slack-compatible incoming webhooks, in JavaScript
// (componentize-js, world `strata:flavor/alerter-flavor`).
//
// `post` sends one message as a Slack incoming-webhook JSON body (`text`, `blocks`,
// `attachments`; Mattermost and Discord's `/slack` endpoint take the same).
// The lifecycle has nothing to create, start, stop or remove: it keeps the component's
// phase in the state strata hands back on every call, and `status` checks, without
// posting anything, that the webhook's server answers.
//
// The URL is `webhook_url`, or the endpoint of the service connector the component is
// bound to (`connector.endpoint`; strata adds its `Authorization` header itself, the
// flavor never sees the token). strata grants that origin and no other.
//
// A webhook URL carries its secret in its path (`/services/T000/B000/XXXX`): nothing
// this flavor returns or logs ever names more of it than its origin, `scheme://host[:port]`.
//
// Requests go straight through `wasi:http/outgoing-handler` rather than `fetch`: `fetch`
// reports every failure as one `NetworkError`, where the error code says what happened
// (connection refused, strata refused the origin, a timeout), and the user needs that.

import { log } from 'strata:flavor/host@0.2.0';
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingRequest, OutgoingBody } from 'wasi:http/types@0.2.12';

const VERSION = '0.1.0';
const LEVELS = ['info', 'success', 'warning', 'error'];
const COLORS = { info: '#439FE0', success: 'good', warning: 'warning', error: 'danger' };
// What the context block shows, in this order: `params` key, label.
const CONTEXT = [['pipeline', 'pipeline'], ['run-id', 'run'], ['step', 'step'], ['stack', 'stack'], ['level', 'level']];
// Slack's limits: a header's plain text, a section's text, a context element's text,
// a message's `text`.
const HEADER_MAX = 150;
const SECTION_MAX = 3000;
const CONTEXT_MAX = 300;
const TEXT_MAX = 39000;

const REASONS = {
  200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content',
  301: 'Moved Permanently', 302: 'Found', 307: 'Temporary Redirect', 308: 'Permanent Redirect',
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 410: 'Gone', 413: 'Payload Too Large', 429: 'Too Many Requests',
  500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

const NO_URL = 'no webhook to post to: pass `--webhook_url=URL` (the incoming webhook\'s URL) ' +
  'or bind a service connector (`--connector=NAME`) whose endpoint is the webhook';

// ---------------------------------------------------------------------------------------
// Configuration, state, URLs.

const configOf = (pairs) => Object.fromEntries(pairs);

// The webhook's URL: `webhook_url`, else the connector's endpoint, else null.
const urlOf = (c) => c.webhook_url || c['connector.endpoint'] || null;

// `scheme://host[:port]` of a URL, never its path, query or user:password@; a fixed
// placeholder if it does not parse (the value itself might be a secret).
const originOf = (url) => {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(an unparsable URL)';
  }
};

// Removes from `text` whatever of `url` beyond its origin might be in it (a server
// echoing its own URL, an error quoting the request), so it can be shown.
const scrub = (text, url) => {
  let out = String(text);
  if (url) {
    out = out.split(url).join(originOf(url));
    try {
      const u = new URL(url);
      for (const part of [u.pathname + u.search, u.pathname, u.search.slice(1)]) {
        if (part.length > 1) {
          out = out.split(part).join('/…');
        }
      }
    } catch {
      // nothing more to remove than the URL itself
    }
  }
  return out;
};

const stateOf = (ctx) => {
  if (!ctx.state) {
    return { phase: 'registered' };
  }
  try {
    return JSON.parse(new TextDecoder().decode(ctx.state));
  } catch {
    return { phase: 'registered' };
  }
};

// A lifecycle step returns `state-result`, a WIT type alias of a result: componentize-js
// wants it as a value, `{ tag: 'ok', val }` (the new state's bytes) or `{ tag: 'err',
// val: message }`. Functions that return a plain `result` (`validate`, `post`,
// `prepare-pipeline-deployment`) throw for an error instead.
const saved = (state) => ({ tag: 'ok', val: new TextEncoder().encode(JSON.stringify(state)) });
const failed = (message) => ({ tag: 'err', val: message });

const phaseLine = (phase) =>
  ({ running: 'running', provisioned: 'provisioned, not running' })[phase] ?? 'not provisioned';

// `404 Not Found`, or just `404` for a code without a known phrase.
const statusLine = (status) => (REASONS[status] ? `${status} ${REASONS[status]}` : `${status}`);

// ---------------------------------------------------------------------------------------
// HTTP, over wasi:http/outgoing-handler.

// A request that got no answer: `code` is the wasi:http error code's case
// (`connection-refused`, `HTTP-request-denied`, …), `reason` says it for a person.
class NetError extends Error {
  constructor(code, reason) {
    super(reason);
    this.code = code;
  }
}

// What each error code means here; the others are said as their names.
const NET_REASONS = {
  'HTTP-request-denied': 'strata refused the request: its origin is not granted',
  'destination-IP-prohibited': 'strata refused the address: no flavor may reach it unless the URL names it by IP',
  'destination-IP-unroutable': 'no route to the address',
  'destination-not-found': 'the host name does not resolve',
  'DNS-error': 'the host name does not resolve',
  'DNS-timeout': 'looking up the host name timed out',
  'connection-refused': 'connection refused',
  'connection-timeout': 'timed out connecting',
  'connection-read-timeout': 'timed out waiting for the answer',
  'connection-write-timeout': 'timed out sending',
  'connection-terminated': 'the server closed the connection',
  'connection-reset': 'the server reset the connection',
  'connection-limit-reached': 'too many requests in one call',
  'TLS-protocol-error': 'the TLS handshake failed (is it an https server?)',
  'TLS-certificate-error': 'the server\'s TLS certificate is not valid',
  'TLS-alert-received': 'the server ended the TLS handshake',
  'HTTP-response-body-size': 'the answer was too large',
  // What strata reports for a request its call's deadline cut short, too.
  'HTTP-protocol-error': 'no valid HTTP answer (not an HTTP server, or none before the call\'s deadline)',
};

const netErrorOf = (code, url) => {
  const tag = code?.tag ?? 'internal-error';
  let reason = NET_REASONS[tag] ?? tag.toLowerCase().replace(/-/g, ' ');
  if (tag === 'internal-error' && typeof code?.val === 'string' && code.val) {
    reason = `internal error: ${scrub(code.val, url)}`;
  }
  if (tag === 'TLS-alert-received' && code?.val?.alertMessage) {
    reason += ` (${scrub(code.val.alertMessage, url)})`;
  }
  return new NetError(tag, reason);
};

const drop = (resource) => {
  try {
    resource?.[Symbol.dispose]?.();
  } catch {
    // already gone
  }
};

const enc = new TextEncoder();
// The most of an answer's body a request reads.
const DRAIN = 1024 * 1024;

// Sends one request and waits for its answer: `{ status, location, text }`, `text` being
// at most the first `keep` bytes of the body, decoded.
// Throws a NetError if there is no answer.
function request(method, url, { headers = [], body = null, keep = 0 } = {}) {
  const u = new URL(url);
  const bytes = body === null ? null : enc.encode(body);
  const fields = [...headers];
  if (bytes) {
    fields.push(['content-length', String(bytes.length)]);
  }
  const req = new OutgoingRequest(Fields.fromList(fields.map(([k, v]) => [k, enc.encode(v)])));
  req.setMethod({ tag: method });
  req.setScheme({ tag: u.protocol === 'https:' ? 'HTTPS' : 'HTTP' });
  req.setAuthority(u.host);
  req.setPathWithQuery(`${u.pathname || '/'}${u.search}`);
  const outgoing = req.body();
  let future;
  try {
    future = handle(req, undefined);
  } catch (e) {
    throw netErrorOf(e?.payload, url);
  }
  // A write that fails means the request failed: the future says why.
  try {
    if (bytes && bytes.length > 0) {
      const out = outgoing.write();
      try {
        for (let i = 0; i < bytes.length; i += 4096) {
          out.blockingWriteAndFlush(bytes.subarray(i, i + 4096));
        }
      } finally {
        drop(out);
      }
    }
    OutgoingBody.finish(outgoing, undefined);
  } catch {
    // the future's error says more
  }
  const pollable = future.subscribe();
  pollable.block();
  drop(pollable);
  const got = future.get();
  drop(future);
  if (got?.tag !== 'ok') {
    throw netErrorOf(undefined, url);
  }
  if (got.val.tag !== 'ok') {
    throw netErrorOf(got.val.val, url);
  }
  const response = got.val.val;
  const status = response.status();
  const answerHeaders = response.headers();
  const location = answerHeaders.get('location')[0];
  drop(answerHeaders);
  // The body is read to its end (strata logs one left unread), at most DRAIN bytes of
  // it, and the first `keep` bytes are kept.
  const chunks = [];
  let kept = 0;
  let read = 0;
  const incoming = response.consume();
  const stream = incoming.stream();
  try {
    while (read < DRAIN) {
      const chunk = stream.blockingRead(65536n);
      read += chunk.length;
      if (kept < keep) {
        const part = chunk.subarray(0, keep - kept);
        chunks.push(part);
        kept += part.length;
      }
    }
  } catch {
    // closed: the whole body is read (or failed: what was read will do)
  }
  drop(stream);
  drop(incoming);
  const all = new Uint8Array(kept);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const text = new TextDecoder().decode(all);
  drop(response);
  return { status, location: location ? new TextDecoder().decode(location) : null, text };
}

// ---------------------------------------------------------------------------------------
// The message.

// Slack's mrkdwn treats `&`, `<` and `>` as control characters (`<!channel>` pings a
// whole channel): text from a run is escaped, so it shows as it was written.
const escapeMrkdwn = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

// `s`, escaped with `escape`, cut to at most `max` characters (UTF-16 units, as Slack
// counts) with an ellipsis, never in the middle of an escape or a surrogate pair.
const fit = (s, max, escape = (x) => x) => {
  const whole = escape(s);
  if (whole.length <= max) {
    return whole;
  }
  let out = '';
  for (const ch of s) {
    const piece = escape(ch);
    if (out.length + piece.length > max - 1) {
      break;
    }
    out += piece;
  }
  return `${out}…`;
};

// A link for `url`, if it is a plain http(s) URL Slack can show as one.
const linkOf = (url) => (/^https?:\/\/[^\s<>|]+$/i.test(url ?? '') ? url : null);

// The JSON body of a Slack incoming webhook for `message` and `params`.
function slackBody(c, message, params) {
  const p = {};
  for (const [k, v] of params) {
    p[k] = String(v).trim();
  }
  const title = p.title ?? '';
  const body = String(message).trim();
  if (!title && !body) {
    throw new Error('nothing to post: the message is empty (and no `title` was given)');
  }
  const level = LEVELS.includes(p.level) ? p.level : 'info';
  const link = linkOf(p.url);

  const fallback = [title, body, link].filter(Boolean).join('\n');
  const text = fit(fallback, TEXT_MAX, escapeMrkdwn);

  const blocks = [];
  if (title) {
    blocks.push({ type: 'header', text: { type: 'plain_text', text: fit(title, HEADER_MAX), emoji: true } });
  }
  if (body) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: fit(body, SECTION_MAX, escapeMrkdwn) } });
  }
  const context = [];
  for (const [key, label] of CONTEXT) {
    if (p[key]) {
      context.push({ type: 'mrkdwn', text: `*${label}:* ${fit(p[key], CONTEXT_MAX - label.length - 4, escapeMrkdwn)}` });
    }
  }
  if (link) {
    context.push({ type: 'mrkdwn', text: `<${link}|details>` });
  }
  if (context.length > 0) {
    blocks.push({ type: 'context', elements: context });
  }

  const out = { text, username: c.username || 'strata' };
  if (c.channel) {
    out.channel = c.channel;
  }
  out.blocks = blocks;
  out.attachments = [{ color: COLORS[level], fallback: text }];
  return out;
}

// What to do about an answer that is not 2xx, for the component `name` (`c`: its config).
const hintFor = (status, location, name, c) => {
  if (status >= 300 && status < 400) {
    const where = location ? ` (it points to ${originOf(location)})` : '';
    return `strata follows no redirect: set \`webhook_url\` to the URL it points to${where}`;
  }
  if (status === 401 || status === 403) {
    return c['connector.name']
      ? `the service refused the credentials: check the token of connector \`${c['connector.name']}\` ` +
        `(\`strata service-connector verify ${c['connector.name']}\`)`
      : 'the service refused the URL: check the secret in `webhook_url` (a revoked or mistyped webhook), ' +
        'or bind a connector with the token it wants';
  }
  if (status === 404 || status === 410) {
    return 'the webhook was removed (or the URL is mistyped): create a new one and ' +
      `\`strata alerter update ${name} --webhook_url=URL\``;
  }
  if (status === 429) {
    return 'the service is rate-limiting this webhook: try again later';
  }
  if (status >= 500) {
    return 'the service failed: try again later';
  }
  return 'the service refused the message: check the `channel` and `username` fields ' +
    '(a webhook may be tied to one channel)';
};

// What to do about a request that got no answer.
const netHint = (code) => {
  if (code === 'HTTP-request-denied' || code === 'destination-IP-prohibited') {
    return 'strata lets a webhook reach only the origin of `webhook_url` or of the bound ' +
      'connector\'s endpoint (`strata alerter describe NAME` lists the grants)';
  }
  return 'the server may be down or not reachable from here: check the host and port of ' +
    '`webhook_url` (`--verbose` shows strata\'s log of the request)';
};

// ---------------------------------------------------------------------------------------
// The exports.

export const alerter = {
  // Returns one line saying where the message went; throws one line saying why not.
  post(ctx, message, params) {
    const c = configOf(ctx.config);
    const url = urlOf(c);
    if (!url) {
      throw NO_URL;
    }
    const origin = originOf(url);
    let payload;
    try {
      payload = JSON.stringify(slackBody(c, message, params));
    } catch (e) {
      throw String(e?.message ?? e);
    }
    let answer;
    try {
      answer = request('post', url, {
        headers: [['content-type', 'application/json; charset=utf-8']],
        body: payload,
        keep: 1024,
      });
    } catch (e) {
      if (!(e instanceof NetError)) {
        throw `could not post to webhook ${origin}: ${scrub(e?.message ?? e, url)}`;
      }
      throw `could not post to webhook ${origin}: ${e.message}; ${netHint(e.code)}`;
    }
    if (answer.status < 200 || answer.status > 299) {
      const said = scrub(answer.text, url).replace(/\s+/g, ' ').trim().slice(0, 200) || '(empty body)';
      throw `webhook ${origin} answered ${statusLine(answer.status)}: ${said}; ` +
        hintFor(answer.status, answer.location, ctx.componentName, c);
    }
    log('info', `posted ${payload.length} bytes to ${origin} (${statusLine(answer.status)})`);
    return `posted to ${origin} (${statusLine(answer.status)})`;
  },
};

export const lifecycle = {
  describe() {
    return {
      name: 'webhook',
      componentType: 'alerter',
      version: VERSION,
      description: 'Posts alerts to a Slack-compatible incoming webhook (Slack, Mattermost, ' +
        'Discord\'s /slack endpoint), given by URL or by a bound service connector.',
      config: [
        { name: 'webhook_url', kind: 'url', required: false, default: undefined,
          description: 'The incoming webhook\'s URL; leave it out to post to the endpoint of the bound service connector.' },
        { name: 'channel', kind: 'text', required: false, default: undefined,
          description: 'The channel to post to (like #ops), if the webhook lets a message choose.' },
        { name: 'username', kind: 'text', required: false, default: 'strata',
          description: 'The name the messages are posted under, if the webhook lets a message choose.' },
      ],
      supportedSchemes: [],
      requirements: [],
      origins: [],
    };
  },

  // strata has checked names and kinds (`webhook_url` is an http:// or https:// URL).
  // No message quotes the URL: its path is a secret.
  validate(config) {
    const c = configOf(config);
    const problems = [];
    // `{{secret.key}}`: the URL is kept in a secret (its path is the webhook's
    // credential); strata resolves it for each call, and grants its origin.
    if (c.webhook_url !== undefined && !/^\s*\{\{[^{}.]+\.[^{}.]+\}\}\s*$/.test(c.webhook_url)) {
      let u = null;
      try {
        u = new URL(c.webhook_url);
      } catch {
        problems.push({ field: 'webhook_url', message: 'not a URL: give the incoming webhook\'s http:// or https:// URL' });
      }
      if (u && u.protocol !== 'https:' && u.protocol !== 'http:') {
        problems.push({ field: 'webhook_url', message: `a \`${u.protocol}\` URL: a webhook is http:// or https://` });
      }
      if (u && (u.username || u.password)) {
        problems.push({ field: 'webhook_url', message: 'carries user:password@, which strata refuses to send: ' +
          'register a `basic` service connector for it and bind it with `--connector=NAME`' });
      }
    }
    if (c.channel !== undefined && !/^[#@]?[^\s\u0000-\u001f\u007f#@,:;<>&"'`\\/|*?]{1,80}$/.test(c.channel)) {
      problems.push({ field: 'channel', message: `\`${c.channel}\` is not a channel: a name like \`#ops\` ` +
        '(at most 80 characters, no spaces, commas, quotes or `<>&`), `@user`, or an id like `C0123456789`' });
    }
    if (c.username !== undefined && (c.username.trim() === '' || c.username.length > 80 || /[\u0000-\u001f\u007f]/.test(c.username))) {
      problems.push({ field: 'username', message: 'a user name is 1 to 80 characters on one line' });
    }
    if (problems.length > 0) {
      throw problems;
    }
  },

  provision(ctx) {
    const url = urlOf(configOf(ctx.config));
    if (!url) {
      return failed(NO_URL);
    }
    log('info', `a webhook has nothing to create: ${ctx.componentName} posts to ${originOf(url)}`);
    return saved({ ...stateOf(ctx), phase: 'provisioned' });
  },

  resume(ctx) {
    const url = urlOf(configOf(ctx.config));
    if (!url) {
      return failed(NO_URL);
    }
    log('info', `a webhook has nothing to start: ${ctx.componentName} posts to ${originOf(url)} when asked`);
    return saved({ ...stateOf(ctx), phase: 'running' });
  },

  // Stopping and removing work without a URL: `down` must always be possible.
  suspend(ctx) {
    log('info', `a webhook has nothing to stop: ${ctx.componentName} just stops posting`);
    const s = stateOf(ctx);
    return saved({ ...s, phase: s.phase === 'registered' ? 'registered' : 'provisioned' });
  },

  deprovision(ctx) {
    log('info', `a webhook has nothing to remove: ${ctx.componentName} created nothing`);
    return saved({ ...stateOf(ctx), phase: 'registered' });
  },

  // Posts nothing: a HEAD (a GET if HEAD is not allowed) to the webhook's URL, where any
  // answer below 500 means its server is there (Slack answers 400 or 405 to a GET). The
  // phase is the lifecycle's: a server that is down is said in the detail, and `down`
  // still suspends (strata acts on `running`).
  status(ctx) {
    const c = configOf(ctx.config);
    const s = stateOf(ctx);
    const provisioned = s.phase === 'provisioned' || s.phase === 'running';
    const url = urlOf(c);
    if (!url) {
      return { provisioned, running: s.phase === 'running', detail: `${NO_URL}; ${phaseLine(s.phase)}` };
    }
    const origin = originOf(url);
    let reachable = false;
    let seen;
    try {
      let answer = request('head', url);
      if (answer.status === 405 || answer.status === 501) {
        answer = request('get', url);
      }
      reachable = answer.status < 500;
      seen = reachable ? `answers (${answer.status})` : `failing (${statusLine(answer.status)})`;
    } catch (e) {
      seen = `unreachable (${e instanceof NetError ? e.message : scrub(e?.message ?? e, url)})`;
    }
    return {
      provisioned,
      running: s.phase === 'running',
      detail: `${origin}: ${seen}; ${phaseLine(s.phase)}`,
    };
  },

  // Nothing to prepare; a run is refused only when there is nowhere to post.
  preparePipelineDeployment(ctx, runtime) {
    if (!urlOf(configOf(ctx.config))) {
      throw NO_URL;
    }
  },
};
