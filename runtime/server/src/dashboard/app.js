// strata's dashboard: one page, its views chosen by the address's fragment (#/stacks,
// #/component/TYPE/NAME, #/flavors, #/runs, #/run/ID, #/connectors). Everything it shows
// comes from the REST API under /api/v1, with a token sent in the Authorization header.
//
// Every text that comes from the API (names, errors, logs: some written by flavors) is
// put in the page with textContent, never parsed as HTML.

const MODE = document.documentElement.dataset.mode === "team" ? "team" : "daemon";
const TOKEN_KEY = "strata.dashboard.token";
const THEME_KEY = "strata.dashboard.theme";
const main = document.getElementById("main");

// ---- small helpers ------------------------------------------------------------------

/** An element: `h("td.num", {title: "x"}, "text", child…)`. Strings become text nodes. */
function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs === null || attrs === undefined || typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "on") for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const enc = encodeURIComponent;

/** `3 stacks`, `1 stack`. */
function count(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

function ago(ms) {
  if (!ms) return "";
  const d = Math.max(0, Date.now() - ms) / 1000;
  if (d < 60) return `${Math.round(d)} s ago`;
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${Math.round(d / 3600)} h ago`;
  return new Date(ms).toLocaleString();
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

// Each status: a kind (its colour), an icon and the word itself, so that it reads the
// same without colour.
const STATUS = {
  registered: ["idle", "○"],
  provisioning: ["busy", "◔"],
  provisioned: ["ok", "◆"],
  resuming: ["busy", "◔"],
  running: ["good", "▶"],
  suspending: ["busy", "◔"],
  deprovisioning: ["busy", "◔"],
  pending: ["idle", "…"],
  completed: ["ok", "✓"],
  cached: ["ok", "↻"],
  failed: ["bad", "✗"],
  skipped: ["idle", "–"],
  cancelled: ["idle", "⊘"],
  interrupted: ["bad", "!"],
  succeeded: ["ok", "✓"],
  started: ["busy", "◔"],
  done: ["ok", "✓"],
  unchanged: ["idle", "="],
  up: ["good", "▲"],
  down: ["idle", "▼"],
  reachable: ["ok", "✓"],
  unreachable: ["bad", "✗"],
};

function statusOf(word) {
  return Object.hasOwn(STATUS, word) ? STATUS[word] : ["idle", "•"];
}

function badge(word, title) {
  const [kind, icon] = statusOf(word);
  return h(`span.badge.${kind}`, { title: title || null, dataset: { status: word } },
    h("span.icon", { "aria-hidden": "true" }, icon), word);
}

// ---- the API ------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.hint = body?.error?.hint || "";
    this.code = body?.error?.code || "";
  }
}

/** Whether a token was accepted: a 401 then means the session ended. */
let loggedIn = false;

// The token is kept for this tab only (sessionStorage): closing it logs out, nothing is
// left in the browser's profile, and a window another site opens on the dashboard (to
// place a button under the user's pointer) starts with no session.
const tokens = sessionStorage;

function token() {
  return tokens.getItem(TOKEN_KEY);
}

async function request(method, path, body, accept) {
  const headers = { Accept: accept || "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (resp.status === 401 && loggedIn) {
    loggedIn = false;
    tokens.removeItem(TOKEN_KEY);
    showLogin("Your session has ended.");
    throw new ApiFailure(401, await resp.json().catch(() => null));
  }
  return resp;
}

async function api(method, path, body) {
  const resp = await request(method, path, body);
  const text = await resp.text();
  const data = text ? JSON.parse(text) : null;
  if (!resp.ok) throw new ApiFailure(resp.status, data);
  return data;
}

const get = (path) => api("GET", path);

/** Follows a server-sent event stream (an `up`, a `down`), calling `on(event, data)`. */
async function follow(method, path, body, on) {
  const resp = await request(method, path, body, "text/event-stream");
  if (!resp.ok) throw new ApiFailure(resp.status, await resp.json().catch(() => null));
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of chunk.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      on(event, data.length ? JSON.parse(data.join("\n")) : null);
    }
  }
}

function errorBox(e, doing) {
  return h("div.error", { role: "alert" },
    h("strong", doing ? `${doing} failed: ` : "Error: "), e.message,
    e.hint ? h("div.small.muted", "Hint: ", e.hint) : null);
}

// ---- page frame ----------------------------------------------------------------------

let current = { page: "", timer: null, gen: 0 };

function setPage(name, ...nodes) {
  main.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function every(ms, fn) {
  clearInterval(current.timer);
  current.timer = setInterval(fn, ms);
}

async function route() {
  clearInterval(current.timer);
  const gen = ++current.gen;
  // A stray `%` (a hand-typed address) is not an escape: such a part is no name.
  const decode = (p) => {
    try { return decodeURIComponent(p); } catch { return null; }
  };
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decode);
  const [page, ...rest] = parts;
  const still = () => gen === current.gen;
  // A name never is `.` or `..`: such an address would make the page ask for another route.
  if (page === null || rest.some((p) => p === null || p === "." || p === ".." || p === "")) {
    setPage(page, errorBox({ message: `there is no page ${location.hash}`, hint: "use the links at the top" }));
    return;
  }
  try {
    switch (page) {
      case "component": return await componentPage(rest[0], rest.slice(1).join("/"), still);
      case "flavors": return await flavorsPage(still);
      case "runs": return await runsPage(still);
      case "run": return await runPage(rest.join("/"), still);
      case "connectors": return await connectorsPage(still);
      default: return await stacksPage(still);
    }
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401) return;
    if (still()) setPage(page, errorBox(e, "Loading this page"));
  }
}

// ---- login ---------------------------------------------------------------------------

function showLogin(why) {
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  clearInterval(current.timer);
  current.gen++;
  if (MODE === "daemon") {
    setPage("", h("section.card.login",
      h("header", h("h2", "Open the dashboard")),
      h("div.body",
        why ? h("p", why) : null,
        h("p", "This is the dashboard of a local strata daemon. To open it, run:"),
        h("pre.log", "strata dashboard"),
        h("p.muted.small", "It prints a link that opens the dashboard once, within two minutes; only who can read your strata home can make one."))));
    return;
  }
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "off", placeholder: "strata_…", "aria-label": "API token", required: true });
  const status = h("p.small.muted", "Your token is kept in this tab until you log out or close it; it is sent only to this server.");
  const form = h("form", {
    on: {
      submit: async (ev) => {
        ev.preventDefault();
        tokens.setItem(TOKEN_KEY, input.value.trim());
        try {
          await start();
        } catch (e) {
          tokens.removeItem(TOKEN_KEY);
          showLogin("");
          main.querySelector(".body").prepend(errorBox(e, "Logging in"));
        }
      },
    },
  },
  h("label", { for: "token" }, "API token"), input,
  h("button.primary", { type: "submit" }, "Log in"), status);
  setPage("", h("section.card.login",
    h("header", h("h2", "Log in to the strata server")),
    h("div.body", why ? h("p", why) : null,
      h("p", "Paste your API token. An admin makes one with ", h("code", "strata server token create USER"), "."),
      form)));
}

async function start() {
  let who = "";
  if (MODE === "team") {
    const me = await get("/api/v1/whoami");
    who = `${me.user ?? me.name ?? ""} (${me.role ?? ""})`;
  } else {
    const info = await get("/api/v1/daemon");
    who = `daemon ${info.address} · ${info.home}`;
  }
  loggedIn = true;
  document.getElementById("who").textContent = who;
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  await route();
}

async function boot() {
  const m = location.hash.match(/^#code=([0-9a-f]+)$/);
  if (m) {
    // Trade the one-time code for a session, then take it out of the address bar.
    history.replaceState(null, "", "/#/stacks");
    try {
      const s = await api("POST", "/api/v1/dashboard/session", { code: m[1] });
      tokens.setItem(TOKEN_KEY, s.token);
    } catch (e) {
      showLogin("");
      main.prepend(errorBox(e, "Opening the link"));
      return;
    }
  }
  if (!token()) return showLogin("");
  try {
    await start();
  } catch (e) {
    if (e instanceof ApiFailure && e.status === 401) {
      tokens.removeItem(TOKEN_KEY);
      showLogin(MODE === "daemon" ? "That session has ended (the daemon restarted, or you logged out)." : "Your token is no longer valid.");
    } else setPage("", errorBox(e, "Loading"));
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  loggedIn = false;
  if (MODE === "daemon") await request("DELETE", "/api/v1/dashboard/session").catch(() => {});
  tokens.removeItem(TOKEN_KEY);
  showLogin("You are logged out.");
});

function applyTheme(t) {
  if (t) document.documentElement.dataset.theme = t;
}
// The system's preference, until the ◐ button picks one (kept in this browser).
const dark = matchMedia("(prefers-color-scheme: dark)");
applyTheme(localStorage.getItem(THEME_KEY) || (dark.matches ? "dark" : "light"));
dark.addEventListener("change", () => {
  if (!localStorage.getItem(THEME_KEY)) applyTheme(dark.matches ? "dark" : "light");
});
document.getElementById("theme").addEventListener("click", () => {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
});
window.addEventListener("hashchange", () => {
  if (/^#code=/.test(location.hash)) boot();
  else if (token()) route();
});

// ---- stacks --------------------------------------------------------------------------

const compLink = (type, name) => h("a", { href: `#/component/${enc(type)}/${enc(name)}` }, name);

function liveCell(status) {
  if (!status) return h("span.muted", "—");
  if (status.Err !== undefined) return h("span", badge("failed"), " ", h("span.small", status.Err));
  const st = status.Ok;
  const word = st.running ? "up" : st.provisioned ? "provisioned" : "down";
  return h("span", badge(word), " ", h("span.small.muted", st.detail));
}

async function stacksPage(still) {
  const stacks = await get("/api/v1/stacks");
  if (!still()) return;
  const total = stacks.reduce((n, st) => n + st.components.length, 0);
  const filter = h("input", { type: "search", placeholder: "Filter stacks and components", "aria-label": "Filter" });
  const list = h("div");
  const cards = stacks
    .slice()
    .sort((a, b) => (b.active - a.active) || a.name.localeCompare(b.name))
    .map((st) => stackCard(st));
  append(list, cards.map((c) => c.el));
  filter.addEventListener("input", () => {
    const q = filter.value.toLowerCase();
    for (const c of cards) c.el.hidden = q && !c.text.includes(q);
  });
  setPage("stacks",
    h("h1", "Stacks", h("span.muted.small", `${count(stacks.length, "stack")} · ${count(total, "component")}`)),
    h("div.toolbar", filter),
    list);
  // What each component's flavor says of it now: fetched once, a few at a time.
  const seen = new Map();
  for (const c of cards) for (const row of c.rows) {
    const key = `${row.type}/${row.name}`;
    if (!seen.has(key)) seen.set(key, []);
    seen.get(key).push(row.cell);
  }
  const keys = [...seen.keys()];
  const LIVE_LIMIT = 60;
  const pending = keys.slice(0, LIVE_LIMIT);
  for (const [k, cells] of seen) if (!pending.includes(k)) for (const cell of cells) {
    cell.replaceChildren(h("button", {
      type: "button",
      on: { click: () => liveStatus(k, cells) },
    }, "Ask the flavor"));
  }
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (pending.length && still()) {
      const k = pending.shift();
      await liveStatus(k, seen.get(k));
    }
  }));
  // Phases change under other hands (the CLI, another user): keep them current.
  if (still()) every(4000, () => refreshPhases(cards, still));
}

async function liveStatus(key, cells) {
  const [type, ...name] = key.split("/");
  for (const cell of cells) cell.replaceChildren(h("span.muted", "asking…"));
  try {
    const c = await get(`/api/v1/components/${enc(type)}/${enc(name.join("/"))}`);
    for (const cell of cells) cell.replaceChildren(liveCell(c.status));
  } catch (e) {
    for (const cell of cells) cell.replaceChildren(h("span.small", badge("failed"), " ", e.message));
  }
}

async function refreshPhases(cards, still) {
  if (cards.some((c) => c.busy)) return;
  let stacks;
  try { stacks = await get("/api/v1/stacks"); } catch { return; }
  if (!still()) return;
  const byName = new Map(stacks.map((st) => [st.name, st]));
  if (byName.size !== cards.length || cards.some((c) => !byName.has(c.name))) return route();
  for (const c of cards) c.update(byName.get(c.name));
}

function stackCard(st) {
  const rows = [];
  const tbody = h("tbody");
  const progress = h("ol.progress", { hidden: true, "aria-live": "polite", "aria-label": `Progress of ${st.name}` });
  const card = { name: st.name, rows, busy: false, text: "", el: null };
  const fill = (view) => {
    tbody.replaceChildren();
    rows.length = 0;
    card.text = [view.name, ...view.components.flatMap((m) => [m.name, m.flavor, m.component_type])].join(" ").toLowerCase();
    for (const m of view.components) {
      const cell = h("td.live");
      const phase = h("td.phase", badge(m.phase));
      rows.push({ type: m.component_type, name: m.name, cell, phase });
      tbody.append(h("tr", { dataset: { component: `${m.component_type}/${m.name}` } },
        h("td.muted", m.component_type),
        h("td", compLink(m.component_type, m.name)),
        h("td.mono", m.flavor),
        phase,
        cell));
    }
  };
  fill(st);
  card.update = (view) => {
    const same = view.components.length === rows.length
      && view.components.every((m, i) => rows[i].type === m.component_type && rows[i].name === m.name);
    if (!same) return fill(view);
    view.components.forEach((m, i) => {
      const b = rows[i].phase.firstChild;
      if (b?.dataset.status !== m.phase) rows[i].phase.replaceChildren(badge(m.phase));
    });
  };
  const buttons = [];
  const act = (label, cls, what, confirmText) => {
    const b = h(`button.${cls}`, {
      type: "button",
      on: { click: () => stackAction(card, st.name, what, confirmText, progress, buttons) },
    }, label);
    buttons.push(b);
    return b;
  };
  card.el = h("section.card" + (st.active ? ".active" : ""), { dataset: { stack: st.name }, "aria-label": `Stack ${st.name}` },
    h("header",
      h("h2", st.name, st.active ? h("span.badge.star", { title: "The active stack: pipelines run on it" }, "★ active") : null),
      h("span.muted.small", count(st.components.length, "component")),
      h("div.actions",
        act("▲ Up", "primary", "up"),
        act("▼ Down", "", "down"),
        act("▼ Down --force", "danger", "down-force",
          `Deprovision every component of stack “${st.name}”? What their flavors created is removed.`),
        st.active ? null : act("★ Set active", "activate", "activate"))),
    h("div.table-wrap", h("table.members",
      h("thead", h("tr", h("th", "Type"), h("th", "Component"), h("th", "Flavor"), h("th", "Phase"), h("th", "Live status"))),
      tbody)),
    progress);
  return card;
}

/** Adds a step's progress to `list`: one line per step, `started` then how it ended. */
function showProgress(list, p) {
  const what = `${p.component_type} ${p.name}: ${p.step}`;
  const word = p.outcome;
  const extra = word === "done" ? `in ${duration(p.ms)}` : word === "failed" ? p.message : word === "unchanged" ? p.detail : "";
  const line = h("li", { dataset: { what } }, badge(word), h("span", what), extra ? h("span.muted", extra) : null);
  const started = [...list.children].find((li) => li.dataset.what === what && li.querySelector("[data-status=started]"));
  if (started && word !== "started") started.replaceWith(line);
  else list.append(line);
}

async function stackAction(card, name, what, confirmText, progress, buttons) {
  if (confirmText && !confirm(confirmText)) return;
  for (const b of buttons) b.disabled = true;
  card.busy = true;
  progress.hidden = false;
  progress.replaceChildren(h("li.muted", `${what === "activate" ? "setting active" : what.replace("-force", " --force")} ${name}…`));
  try {
    if (what === "activate") {
      await api("PUT", "/api/v1/active-stack", { name });
      progress.append(h("li", badge("done"), `${name} is the active stack`));
      card.busy = false;
      return route();
    }
    const path = what === "up" ? `/api/v1/stacks/${enc(name)}/up` : `/api/v1/stacks/${enc(name)}/down${what === "down-force" ? "?force=true" : ""}`;
    let failed = null;
    await follow("POST", path, undefined, (event, data) => {
      if (event === "progress") {
        showProgress(progress, data);
        const row = card.rows.find((r) => r.type === data.component_type && r.name === data.name);
        if (row && data.outcome === "started") row.phase.replaceChildren(badge(busyPhase(data.step)));
      } else if (event === "end") {
        if (data.state !== "succeeded") failed = data.error || { message: data.state };
      }
    });
    // The phases as they are now, then the last line: who reads "done" sees them.
    const view = await get(`/api/v1/stacks/${enc(name)}`);
    card.update(view);
    if (failed) progress.append(h("li", errorBox({ message: failed.message, hint: failed.hint })));
    else progress.append(h("li", badge("done"), `${what.replace("-force", " --force")} ${name}: done`));
    for (const r of card.rows) liveStatus(`${r.type}/${r.name}`, [r.cell]);
  } catch (e) {
    progress.append(h("li", errorBox(e, `${what} ${name}`)));
  } finally {
    card.busy = false;
    for (const b of buttons) b.disabled = false;
  }
}

function busyPhase(step) {
  return { provision: "provisioning", resume: "resuming", suspend: "suspending", deprovision: "deprovisioning" }[step] || "started";
}

// ---- component -----------------------------------------------------------------------

async function componentPage(type, name, still) {
  const c = await get(`/api/v1/components/${enc(type)}/${enc(name)}`);
  if (!still()) return;
  const [flavor, ops] = await Promise.all([
    get(`/api/v1/flavors/${enc(type)}/${enc(c.flavor)}`).catch(() => null),
    get("/api/v1/operations").catch(() => []),
  ]);
  if (!still()) return;
  const history = [];
  for (const op of ops) for (const p of op.progress || []) {
    if (p.component_type === type && p.name === name && p.outcome !== "started") history.push({ op, p });
  }
  history.sort((a, b) => b.op.started_at - a.op.started_at);
  const rec = flavor || {};
  const progress = h("ol.progress", { hidden: true, "aria-live": "polite" });
  const buttons = [];
  const act = (label, cls, what) => {
    const b = h(`button.${cls}`, { type: "button", on: { click: () => componentAction(type, name, what, progress, buttons) } }, label);
    buttons.push(b);
    return b;
  };
  setPage("stacks",
    h("p.small", h("a", { href: "#/stacks" }, "← Stacks")),
    h("h1", `${type} `, h("span.mono", name), badge(c.phase), c.interrupted ? badge("interrupted", "A call was cut off; up or down repeats it") : null),
    h("section.card",
      h("header", h("h2", "Overview"),
        h("div.actions", act("▲ Up", "primary", "up"), act("▼ Down", "", "down"), act("▼ Down --force", "danger", "down-force"))),
      h("div.body", h("dl.kv",
        h("dt", "Flavor"), h("dd", h("span.mono", c.flavor), " ", h("a", { href: `#/flavors` }, "(flavors)")),
        h("dt", "Flavor code"), h("dd.mono", { title: "sha256 of the flavor's .wasm" }, c.flavor_sha256),
        h("dt", "WIT"), h("dd.mono", rec.info ? `strata:flavor@${rec.info.wit}` : "unknown"),
        h("dt", "Live status"), h("dd", liveCell(c.status)),
        h("dt", "Stacks"), h("dd", c.stacks.length ? c.stacks.join(", ") : h("span.muted", "none")),
        h("dt", "Connector"), h("dd", c.connector || h("span.muted", "none")),
        h("dt", "Limits"), h("dd", `${duration(c.timeout_ms)} per call, ${c.memory_mb} MiB`),
        h("dt", "Last error"), h("dd", c.last_error
          ? h("span", badge("failed"), " ", h("span.mono", c.last_error.call), ": ", c.last_error.message, h("span.muted.small", ` (${ago(c.last_error.at)})`))
          : h("span.muted", "none")))),
      progress),
    h("div.grid2",
      h("section.card", h("header", h("h2", "Configuration")),
        h("div.table-wrap", h("table",
          h("thead", h("tr", h("th", "Key"), h("th", "Value"))),
          h("tbody", c.config.length ? c.config.map((kv) => h("tr",
            h("td.mono", kv.key),
            h("td.mono", kv.value, kv.default ? h("span.muted.small", " (default)") : null)))
            : h("tr", h("td.muted", { colspan: 2 }, "no configuration")))))),
      h("section.card", h("header", h("h2", "What the sandbox grants")),
        h("div.body",
          h("h3", "Directories"),
          c.grants.length ? h("ul", c.grants.map((g) => h("li", h("span.mono", g.path), ` — ${g.access}`, g.exists ? "" : " (created by up)")))
            : h("p.muted", "none"),
          h("h3", "Network"),
          c.net.length ? h("ul", c.net.map((n) => h("li", h("span.mono", n.origin), ` — from ${n.from}`, n.credential ? `, credentials of ${n.credential}` : "")))
            : h("p.muted", "no network")))),
    h("section.card", h("header", h("h2", "Lifecycle history"), h("span.muted.small", "operations run through this daemon or server (the newest 200 are kept)")),
      h("div.table-wrap", h("table",
        h("thead", h("tr", h("th", "When"), h("th", "Operation"), h("th", "Step"), h("th", "Outcome"), h("th", "Detail"))),
        h("tbody", history.length ? history.map(({ op, p }) => h("tr",
          h("td", ago(op.started_at)),
          h("td", op.action, op.user ? h("span.muted.small", ` by ${op.user}`) : null),
          h("td.mono", p.step),
          h("td", badge(p.outcome)),
          h("td", p.outcome === "done" ? duration(p.ms) : p.message || p.detail || "")))
          : h("tr", h("td.muted", { colspan: 5 }, "no lifecycle operation yet")))))));
}

async function componentAction(type, name, what, progress, buttons) {
  if (what === "down-force" && !confirm(`Deprovision ${type} ${name}? What its flavor created is removed.`)) return;
  for (const b of buttons) b.disabled = true;
  progress.hidden = false;
  progress.replaceChildren();
  try {
    const path = `/api/v1/components/${enc(type)}/${enc(name)}/${what === "up" ? "up" : "down"}${what === "down-force" ? "?force=true" : ""}`;
    let failed = null;
    await follow("POST", path, undefined, (event, data) => {
      if (event === "progress") showProgress(progress, data);
      else if (event === "end" && data.state !== "succeeded") failed = data.error || { message: data.state };
    });
    if (failed) progress.append(h("li", errorBox({ message: failed.message, hint: failed.hint })));
    else await route();
  } catch (e) {
    progress.append(h("li", errorBox(e, what)));
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

// ---- flavors -------------------------------------------------------------------------

async function flavorsPage(still) {
  const [flavors, integrations] = await Promise.all([
    get("/api/v1/flavors"),
    get("/api/v1/integrations").catch(() => []),
  ]);
  if (!still()) return;
  const byType = new Map();
  for (const f of flavors) {
    if (!byType.has(f.component_type)) byType.set(f.component_type, []);
    byType.get(f.component_type).push(f);
  }
  const sections = [...byType.entries()].map(([type, list]) => h("section.card", { dataset: { type } },
    h("header", h("h2", type), h("span.muted.small", count(list.length, "flavor"))),
    h("div.table-wrap", h("table",
      h("thead", h("tr", h("th", "Flavor"), h("th", "From"), h("th.hide-narrow", "Version"), h("th", "Components"), h("th", "Schema"))),
      h("tbody", list.map((f) => flavorRow(f)))))));
  const missing = TYPES.filter((t) => !byType.has(t));
  setPage("flavors",
    h("h1", "Flavors", h("span.muted.small", `${count(flavors.length, "flavor")} of ${count(byType.size, "type")}`)),
    sections,
    integrations.length ? h("section.card", { dataset: { integrations: "" } },
      h("header", h("h2", "Integrations"), h("span.muted.small", "bundles of flavors: install one with strata integration install NAME")),
      h("div.table-wrap", h("table",
        h("thead", h("tr", h("th", "Integration"), h("th", "Flavors"), h("th", "Installed"))),
        h("tbody", integrations.map((i) => h("tr",
          h("td.mono", i.name),
          h("td.small", i.files.map((f) => f.registered_as || f.file).join(", ")),
          h("td", i.installed ? badge("done") : h("code", `strata integration install ${i.name}`)))))))) : null,
    missing.length ? h("p.muted.small", `No flavor yet for: ${missing.join(", ")}. `,
      "Register one with ", h("code", "strata TYPE flavor register FILE.wasm"), ", written in any language that builds a WebAssembly component.") : null);
}

function flavorRow(f) {
  const detail = h("td", { colspan: 5 });
  const extra = h("tr", { hidden: true }, detail);
  const button = h("button", {
    type: "button", "aria-expanded": "false",
    on: {
      click: async () => {
        const open = extra.hidden;
        extra.hidden = !open;
        button.setAttribute("aria-expanded", String(open));
        button.textContent = open ? "Hide" : "Show";
        if (open && !detail.firstChild) {
          detail.append(h("span.muted", "loading…"));
          try {
            const d = await get(`/api/v1/flavors/${enc(f.component_type)}/${enc(f.flavor)}`);
            detail.replaceChildren(schemaView(d));
          } catch (e) { detail.replaceChildren(errorBox(e)); }
        }
      },
    },
  }, "Show");
  const row = h("tr",
    h("td", h("span.mono", f.flavor), h("div.small.muted", f.description)),
    h("td", f.integration),
    h("td.hide-narrow.mono", f.version),
    h("td.num", f.components),
    h("td", button));
  return [row, extra];
}

/** A flavor's record (`GET /api/v1/flavors/{type}/{name}`) as `flavor describe` shows it. */
function schemaView(rec) {
  const info = rec.info;
  const source = rec.source.kind === "built-in" ? "built into strata"
    : `${rec.source.path}${rec.source.integration ? ` (integration ${rec.source.integration})` : ""}`;
  return h("div",
    h("dl.kv.small",
      h("dt", "Code"), h("dd.mono", `sha256:${rec.sha256} (${bytes(rec.size)})`),
      h("dt", "Source"), h("dd.mono", source),
      h("dt", "WIT"), h("dd.mono", `strata:flavor@${info.wit}`),
      h("dt", "Limits"), h("dd", `${duration(rec.limits.timeout_ms)} per call, ${bytes(rec.limits.memory_bytes)} of memory`),
      info.supported_schemes.some(Boolean) ? [h("dt", "Schemes"), h("dd.mono", info.supported_schemes.filter(Boolean).join(", "))] : null,
      info.requirements.length ? [h("dt", "Needs"), h("dd", info.requirements.map((r) => h("div", `${r.kind} ${r.component_type}${r.flavor ? ` (${r.flavor})` : ""}: ${r.reason}`)))] : null,
      rec.allowed_origins?.length ? [h("dt", "May reach"), h("dd.mono", rec.allowed_origins.join(", "))] : null),
    h("h3", "Configuration"),
    info.config.length ? h("div.table-wrap", h("table",
      h("thead", h("tr", h("th", "Field"), h("th", "Kind"), h("th", "Required"), h("th", "Default"), h("th", "About"))),
      h("tbody", info.config.map((f) => h("tr",
        h("td.mono", f.name),
        h("td.mono", f.kind === "secret" ? "secret 🔒" : f.kind),
        h("td", f.required ? "required" : h("span.muted", "optional")),
        h("td.mono", f.default ?? ""),
        h("td.small", f.description))))))
      : h("p.muted", "no configuration fields"));
}

// ---- runs ----------------------------------------------------------------------------

async function runsPage(still) {
  const runs = await get("/api/v1/runs");
  if (!still()) return;
  runs.sort((a, b) => b.started_ms - a.started_ms);
  setPage("runs",
    h("h1", "Pipeline runs", h("span.muted.small", count(runs.length, "run"))),
    runs.length ? h("section.card", h("div.table-wrap", h("table",
      h("thead", h("tr", h("th", "Run"), h("th", "Pipeline"), h("th", "Stack"), h("th", "Status"), h("th", "Started"), h("th", "Took"), h("th", "Steps"))),
      h("tbody", runs.map((r) => h("tr", { dataset: { run: r.run_id } },
        h("td.mono", h("a", { href: `#/run/${enc(r.run_id)}` }, r.run_id)),
        h("td", r.pipeline),
        h("td", r.stack),
        h("td", badge(r.status)),
        h("td", ago(r.started_ms)),
        h("td.num", duration(r.duration_ms)),
        h("td", `${r.steps}`, r.cached ? h("span.muted.small", ` · ${r.cached} cached`) : null, r.failed ? h("span.small", " · ", badge("failed"), ` ${r.failed}`) : null)))))))
      : h("p.notice", "No run yet. Run a pipeline with ", h("code", "strata pipeline run pipeline.yaml"), "."));
  if (runs.some((r) => r.status === "running")) every(2000, () => still() && route());
}

async function runPage(id, still) {
  const run = await get(`/api/v1/runs/${enc(id)}`);
  if (!still()) return;
  const logBox = h("section.card", { id: "logs" });
  const steps = run.steps;
  const pick = steps.find((st) => st.status === "failed") || steps.find((st) => st.status === "running") || steps[0];
  const graph = stepGraph(steps, (name) => showLog(run, name, logBox, still, graph));
  setPage("runs",
    h("p.small", h("a", { href: "#/runs" }, "← Runs")),
    h("h1", h("span", run.pipeline), badge(run.status), h("span.mono.small.muted", run.run_id)),
    run.error ? h("div.error", h("strong", "Why: "), run.error) : null,
    h("section.card", h("div.body", h("dl.kv",
      h("dt", "Stack"), h("dd", run.stack),
      h("dt", "Orchestrator"), h("dd", run.orchestrator),
      h("dt", "Artifact store"), h("dd", run.artifact_store || ""),
      h("dt", "Started"), h("dd", new Date(run.started_ms).toLocaleString()),
      h("dt", "Took"), h("dd", run.ended_ms ? duration(run.ended_ms - run.started_ms) : "running"),
      h("dt", "Parameters"), h("dd.mono", Object.entries(run.params || {}).map(([k, v]) => `${k}=${v}`).join("  ") || h("span.muted", "none")),
      run.notices?.length ? [h("dt", "Notices"), h("dd", run.notices.join(" · "))] : null))),
    h("section.card", h("header", h("h2", "Steps"), h("span.muted.small", "select a step for its log")),
      h("div.body", graph.el),
      h("div.table-wrap", h("table",
        h("thead", h("tr", h("th", "Step"), h("th", "Status"), h("th", "Took"), h("th", "Cached"), h("th", "Artifacts"), h("th", "Detail"))),
        h("tbody", steps.map((st) => h("tr", { dataset: { step: st.name } },
          h("td", h("a", { href: `#/run/${enc(run.run_id)}`, on: { click: (ev) => { ev.preventDefault(); graph.select(st.name); } } }, st.name)),
          h("td", badge(st.status)),
          h("td.num", duration(st.duration_ms)),
          h("td", st.cached_from ? h("span", badge("cached"), h("span.small.mono", ` from ${st.cached_from}`)) : h("span.muted", "no")),
          h("td", st.outputs.length ? h("ul.small", st.outputs.map((a) => h("li", h("span.mono", a.name), ` ${bytes(a.size)} `, h("span.mono.muted", { title: `sha256 ${a.sha256}` }, a.uri))))
            : h("span.muted", "—")),
          h("td.small", st.error || (st.exit_code !== null && st.exit_code !== undefined ? `exit code ${st.exit_code}` : "")))))))),
    logBox);
  if (pick) graph.select(pick.name);
  if (run.status === "running") every(1500, async () => {
    if (!still()) return;
    const now = await get(`/api/v1/runs/${enc(id)}`).catch(() => null);
    if (now && still() && JSON.stringify(now.steps.map((x) => x.status)) !== JSON.stringify(steps.map((x) => x.status))) route();
    else if (now && now.status !== run.status) route();
  });
}

/** The steps in columns by depth (how many steps lead to each), edges between them. */
function stepGraph(steps, onSelect) {
  if (!steps.length) return { el: h("p.muted", "This run has no steps."), select() {} };
  const byName = new Map(steps.map((st) => [st.name, st]));
  const depth = new Map();
  const depthOf = (name, seen = new Set()) => {
    if (depth.has(name)) return depth.get(name);
    if (seen.has(name)) return 0;
    seen.add(name);
    const ups = (byName.get(name)?.upstream || []).filter((u) => byName.has(u));
    const d = ups.length ? 1 + Math.max(...ups.map((u) => depthOf(u, seen))) : 0;
    depth.set(name, d);
    return d;
  };
  const columns = [];
  for (const st of steps) {
    const d = depthOf(st.name);
    (columns[d] ||= []).push(st);
  }
  const W = 190, H = 54, GX = 60, GY = 18, PAD = 4;
  const pos = new Map();
  columns.forEach((col, x) => col.forEach((st, y) => pos.set(st.name, { x: PAD + x * (W + GX), y: PAD + y * (H + GY) })));
  const width = PAD * 2 + columns.length * (W + GX) - GX;
  const height = PAD * 2 + Math.max(...columns.map((c) => c.length)) * (H + GY) - GY;
  const svg = s("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "group", "aria-label": "Step graph" });
  for (const st of steps) for (const u of st.upstream || []) {
    const a = pos.get(u), b = pos.get(st.name);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
    svg.append(s("path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
  }
  const nodes = new Map();
  for (const st of steps) {
    const p = pos.get(st.name);
    const word = st.cached_from ? "cached" : st.status;
    const [kind, icon] = statusOf(word);
    const label = st.name.length > 22 ? `${st.name.slice(0, 21)}…` : st.name;
    const g = s("g", { class: `node ${kind}`, transform: `translate(${p.x},${p.y})`, tabindex: 0, role: "button", "aria-label": `step ${st.name}: ${word}`, "data-step": st.name },
      s("title", {}, `${st.name}: ${word}`),
      s("rect", { width: W, height: H }),
      s("text", { x: 12, y: 22 }, label),
      s("text", { x: 12, y: 42, class: `sub ${kind}` }, `${icon} ${word}${st.duration_ms !== null && st.duration_ms !== undefined ? ` · ${duration(st.duration_ms)}` : ""}`));
    g.addEventListener("click", () => graph.select(st.name));
    g.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); graph.select(st.name); } });
    nodes.set(st.name, g);
    svg.append(g);
  }
  const graph = {
    el: h("div.graph", svg),
    select(name) {
      for (const [n, g] of nodes) g.classList.toggle("selected", n === name);
      onSelect(name);
    },
  };
  return graph;
}

async function showLog(run, step, box, still) {
  const pre = h("pre.log", { "aria-label": `Log of step ${step}` });
  const state = h("span.muted.small");
  box.replaceChildren(h("header", h("h2", "Log of ", h("span.mono", step)), state), h("div.body", pre));
  box.dataset.step = step;
  let from = 0;
  const more = async () => {
    if (!still() || box.dataset.step !== step) return false;
    const logs = await get(`/api/v1/runs/${enc(run.run_id)}/logs?step=${enc(step)}&from=${from}`);
    const log = logs.find((l) => l.step === step) || logs[0];
    if (!log) { pre.textContent = "(no output)"; return false; }
    if (log.truncated && from === 0) pre.append(h("span.muted", "[the head of this log was dropped: strata keeps the last MiB]\n"));
    pre.append(log.text);
    from = log.next;
    if (!pre.textContent) pre.textContent = "(no output)";
    state.textContent = log.live ? "● live" : `${bytes(log.next)} in all`;
    return log.live;
  };
  try {
    // While the step runs, ask for what it wrote since, every second.
    while (await more()) await new Promise((r) => setTimeout(r, 1000));
  } catch (e) {
    box.append(errorBox(e, "Reading the log"));
  }
}

// ---- connectors and secrets ----------------------------------------------------------

const TYPES = ["orchestrator", "artifact-store", "metadata-store", "container-registry", "secrets-manager",
  "step-operator", "model-deployer", "feature-store", "experiment-tracker", "alerter", "data-validator",
  "image-builder", "annotator", "model-registry", "deployer"];

async function connectorsPage(still) {
  const [connectors, secrets, ...byType] = await Promise.all([
    get("/api/v1/service-connectors"),
    get("/api/v1/secrets"),
    ...TYPES.map((t) => get(`/api/v1/components/${t}`).catch(() => [])),
  ]);
  if (!still()) return;
  // Which components name each secret (`{{name.key}}` in their configuration).
  const users = new Map();
  for (const list of byType) for (const c of list) for (const kv of c.config || []) {
    for (const m of String(kv.value).matchAll(/\{\{\s*([A-Za-z0-9_.-]+?)\.[A-Za-z0-9_-]+\s*\}\}/g)) {
      const who = `${c.component_type}/${c.name}`;
      if (!users.has(m[1])) users.set(m[1], new Set());
      users.get(m[1]).add(who);
    }
  }
  const usedBy = (list) => list.length
    ? list.map((u, i) => { const [t, ...n] = u.split("/"); return [i ? ", " : "", compLink(t, n.join("/"))]; })
    : h("span.muted", "no component");
  setPage("connectors",
    h("h1", "Connectors & secrets"),
    h("section.card", h("header", h("h2", "Service connectors"), h("span.muted.small", "credentials strata adds to the requests of the components bound to them; their flavors never see them")),
      connectors.length ? h("div.table-wrap", h("table",
        h("thead", h("tr", h("th", "Name"), h("th", "Type"), h("th", "Endpoint"), h("th", "Settings"), h("th", "Used by"), h("th", "Verify"))),
        h("tbody", connectors.map((c) => {
          const out = h("div.small");
          const b = h("button", {
            type: "button",
            on: {
              click: async () => {
                              b.disabled = true;
                out.replaceChildren(h("span.muted", "verifying…"));
                try {
                  const r = await api("POST", `/api/v1/service-connectors/${enc(c.name)}/verify`);
                  out.replaceChildren(badge(r.ok ? "reachable" : "unreachable"), " ", r.detail, h("div.muted.mono", r.request, r.status ? ` → ${r.status}` : ""));
                } catch (e) { out.replaceChildren(errorBox(e, "Verify")); }
                b.disabled = false;
              },
            },
          }, "Verify");
          return h("tr", { dataset: { connector: c.name } },
            h("td.mono", c.name), h("td", c.type), h("td.mono", c.endpoint),
            h("td.small.mono", Object.entries(c.values || {}).map(([k, v]) => h("div", `${k}: ${v}`))),
            h("td", usedBy(c.used_by || [])),
            h("td", b, out));
        }))))
        : h("div.body.muted", "No service connector. Register one with ", h("code", "strata service-connector register"), ".")),
    h("section.card", h("header", h("h2", "Secrets"), h("span.muted.small", "names and keys only: the dashboard never shows a secret's value")),
      secrets.length ? h("div.table-wrap", h("table",
        h("thead", h("tr", h("th", "Name"), h("th", "Keys"), h("th", "Used by"), h("th", "Updated"))),
        h("tbody", secrets.map((sec) => h("tr", { dataset: { secret: sec.name } },
          h("td.mono", sec.name),
          h("td.mono", Object.keys(sec.values || {}).join(", ")),
          h("td", usedBy([...(users.get(sec.name) || [])].sort())),
          h("td", ago(sec.updated_at)))))))
        : h("div.body.muted", "No secret. Create one with ", h("code", "strata secret create NAME --KEY=VALUE"), ".")));
}

boot();
