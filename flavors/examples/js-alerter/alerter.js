// js-alerter: a strata alerter flavor written in JavaScript (componentize-js).
//
// It checks its configuration (a channel name and an https webhook URL), keeps its
// phase and how many times it was resumed in the state strata hands back on every call
// (a flavor keeps nothing between calls itself), and logs each alert it would send
// through strata's `host.log`. It asks for nothing else: componentize-js is built here
// without stdio, clocks, random or its own HTTP (`fetch`), so the sandbox has nothing to
// grant it. (The `flavor` world imports wasi:http/outgoing-handler; this flavor never
// calls it. `flavor new --type alerter --lang js` makes one that posts with `fetch`.)
//
// Build: `make` in this directory; `make test` runs `strata flavor test js_alerter.wasm
// --channel=ops --webhook=https://hooks.example/alerts` (the webhook must be https).

import { log } from 'strata:flavor/host@0.2.0';

const LEVELS = ['info', 'warning', 'error'];

const configOf = (pairs) => Object.fromEntries(pairs);

const stateOf = (ctx) =>
  ctx.state ? JSON.parse(new TextDecoder().decode(ctx.state)) : { phase: 'registered', resumes: 0 };

// A lifecycle step returns `state-result`, a WIT type alias of a result: componentize-js
// expects the result as a value, `{ tag: 'ok', val }` or `{ tag: 'err', val: message }`,
// not the throw-for-error convention it uses for a plain `result` (as in `validate`).
const saved = (state) => ({ tag: 'ok', val: new TextEncoder().encode(JSON.stringify(state)) });

export const lifecycle = {
  describe() {
    return {
      name: 'js-alerter',
      componentType: 'alerter',
      version: '0.1.0',
      description: 'Sends alerts for a channel to a webhook (a JavaScript flavor; alerts are logged).',
      config: [
        { name: 'channel', kind: 'text', required: true, default: undefined,
          description: 'The channel alerts go to: lower case letters, digits, - and _.' },
        { name: 'webhook', kind: 'url', required: true, default: undefined,
          description: 'The https:// URL alerts are posted to.' },
        { name: 'min_level', kind: 'text', required: false, default: 'info',
          description: 'The least serious alert that is sent: info, warning or error.' },
      ],
      supportedSchemes: [],
      requirements: [],
      origins: [],
    };
  },

  validate(config) {
    const c = configOf(config);
    const problems = [];
    if (!/^[a-z0-9_-]+$/.test(c.channel ?? '')) {
      problems.push({ field: 'channel', message: `\`${c.channel}\` is not a channel name: use lower case letters, digits, - and _` });
    }
    if (!(c.webhook ?? '').startsWith('https://')) {
      problems.push({ field: 'webhook', message: `\`${c.webhook}\` is not an https:// URL: alerts carry secrets, so plain http is refused` });
    }
    const level = c.min_level ?? 'info';
    if (!LEVELS.includes(level)) {
      problems.push({ field: 'min_level', message: `\`${level}\` is not a level: use one of ${LEVELS.join(', ')}` });
    }
    if (problems.length > 0) {
      throw problems;
    }
  },

  provision(ctx) {
    const state = stateOf(ctx);
    log('info', `registered with ${configOf(ctx.config).webhook}`);
    return saved({ ...state, phase: 'provisioned' });
  },

  deprovision(ctx) {
    return saved({ ...stateOf(ctx), phase: 'registered' });
  },

  resume(ctx) {
    const state = stateOf(ctx);
    return saved({ ...state, phase: 'running', resumes: (state.resumes ?? 0) + 1 });
  },

  suspend(ctx) {
    return saved({ ...stateOf(ctx), phase: 'provisioned' });
  },

  status(ctx) {
    const state = stateOf(ctx);
    const provisioned = state.phase === 'provisioned' || state.phase === 'running';
    return {
      provisioned,
      running: state.phase === 'running',
      detail: `${state.phase}; resumed ${state.resumes ?? 0} times`,
    };
  },

  preparePipelineDeployment(ctx, runtime) {
    const c = configOf(ctx.config);
    if ((c.min_level ?? 'info') !== 'info') {
      return;
    }
    // The user's parameters; strata's own (`strata.run_id`, …) are left out.
    const params = runtime.filter(([k]) => !k.startsWith('strata.')).map(([k, v]) => `${k}=${v}`).join(', ') || 'no parameters';
    log('info', `alert to #${c.channel} via ${c.webhook}: a pipeline run starts (${params})`);
  },
};
