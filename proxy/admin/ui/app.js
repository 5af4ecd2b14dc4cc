// The approvals page: plain JavaScript, no build step, served by the gateway's admin API.
//
// Sign-in: a pasted token or a one-time link (`/ui/#code=...` from `hoop approvals open`) is
// exchanged at POST /ui/session for a page session, kept in sessionStorage and sent as a Bearer
// token. The list comes from GET /approvals (each approval says whether this caller may decide it:
// the page never offers a requester its own approval); live updates from GET /approvals/events,
// read with fetch (EventSource cannot send the Authorization header). Everything that came from an
// agent or a token is put in the document with textContent, never as HTML.
// @ts-check

const STORE = 'hoop.ui.session';
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** @type {{session: string, identity: {sub: string, groups: string[], actor?: string}, expires_at: string} | null} */
let signedIn = null;
/** @type {AbortController | null} */
let stream = null;
/** @type {number | undefined} */
let expiryTimer;
let refreshing = Promise.resolve();
let refreshAgain = false;

// ---------------------------------------------------------------------------------------------
// DOM helpers

/**
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string | null | undefined)[]} [children]
 */
function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return e;
}

/** @param {string} [message] */
function showError(message) {
  const box = $('error');
  box.textContent = message ?? '';
  box.hidden = !message;
}

// ---------------------------------------------------------------------------------------------
// API

/**
 * @param {string} path
 * @param {RequestInit} [init]
 */
async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  if (signedIn) headers.set('authorization', `Bearer ${signedIn.session}`);
  if (init.body) headers.set('content-type', 'application/json');
  const res = await fetch(path, { ...init, headers });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(body?.error?.message ?? `HTTP ${res.status}`);
    /** @type {any} */ (err).status = res.status;
    /** @type {any} */ (err).code = body?.error?.code;
    throw err;
  }
  return body;
}

// ---------------------------------------------------------------------------------------------
// Sign-in

/** @param {{token?: string, code?: string}} credentials */
async function signIn(credentials) {
  try {
    const r = await api('/ui/session', { method: 'POST', body: JSON.stringify(credentials) });
    signedIn = r;
    sessionStorage.setItem(STORE, JSON.stringify(r));
    showError();
    start();
  } catch (e) {
    showSignIn(`Sign-in refused: ${/** @type {Error} */ (e).message}`);
  }
}

/** @param {string} [why] */
function showSignIn(why) {
  stopStream();
  signedIn = null;
  sessionStorage.removeItem(STORE);
  $('main').hidden = true;
  $('signout').hidden = true;
  $('who').textContent = '';
  $('signin').hidden = false;
  setLive(false);
  showError(why);
}

async function signOut() {
  try {
    await api('/ui/session', { method: 'DELETE' });
  } catch {
    /* already gone */
  }
  showSignIn();
}

function start() {
  if (!signedIn) return;
  $('signin').hidden = true;
  $('main').hidden = false;
  $('signout').hidden = false;
  const id = signedIn.identity;
  $('who').textContent = `${id.sub}${id.groups.length ? ` (${id.groups.join(', ')})` : ''}`;
  connect();
  void refresh();
}

// ---------------------------------------------------------------------------------------------
// Live updates: Server-Sent Events over fetch.

/** @param {boolean} on */
function setLive(on) {
  const l = $('live');
  l.textContent = on ? 'live' : 'offline';
  l.className = `live ${on ? 'on' : 'off'}`;
}

function stopStream() {
  stream?.abort();
  stream = null;
}

function connect(attempt = 0) {
  stopStream();
  const ctrl = new AbortController();
  stream = ctrl;
  const retry = () => {
    if (stream !== ctrl || !signedIn) return;
    setLive(false);
    setTimeout(() => connect(attempt + 1), Math.min(30_000, 500 * 2 ** attempt));
  };
  fetch('/approvals/events', { headers: { authorization: `Bearer ${signedIn?.session}` }, signal: ctrl.signal })
    .then(async (res) => {
      if (res.status === 401) return showSignIn('Your session ended: sign in again.');
      if (!res.ok || !res.body) return retry();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          onEvent(frame);
        }
      }
      retry();
    })
    .catch(() => retry());
}

/** @param {string} frame */
function onEvent(frame) {
  let event = 'message';
  let data = '';
  for (const line of frame.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice(7);
    else if (line.startsWith('data: ')) data += line.slice(6);
  }
  if (event === 'ready') {
    setLive(true);
    void refresh(); // anything that changed while the stream was down
  } else if (event === 'approval') {
    void refresh();
  } else if (event === 'signed_out') {
    showSignIn(JSON.parse(data || '{}').reason ?? 'Signed out.');
  }
}

// ---------------------------------------------------------------------------------------------
// The list

/** Refreshes now, or once more after the refresh in flight (changes never pile up requests). */
function refresh() {
  if (refreshAgain) return refreshing;
  refreshAgain = true;
  refreshing = refreshing.then(async () => {
    refreshAgain = false;
    if (!signedIn) return;
    try {
      const { approvals } = await api('/approvals');
      render(approvals);
    } catch (e) {
      const err = /** @type {any} */ (e);
      if (err.status === 401) showSignIn('Your session ended: sign in again.');
      else showError(`Could not load approvals: ${err.message}`);
    }
  });
  return refreshing;
}

/** @param {any[]} approvals */
function render(approvals) {
  const pending = approvals.filter((a) => a.status === 'pending').sort((a, b) => (a.created_at < b.created_at ? -1 : 1));
  const history = approvals.filter((a) => a.status !== 'pending').sort((a, b) => (whenOf(b) < whenOf(a) ? -1 : 1)).slice(0, 100);

  // Keep what an approver typed into a reason box across a re-render.
  /** @type {Record<string, string>} */
  const typed = {};
  for (const input of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll('#pending input.reason'))) {
    if (input.value && input.dataset.id) typed[input.dataset.id] = input.value;
  }
  $('pending').replaceChildren(...pending.map((a) => card(a, typed[a.id] ?? '')));
  $('pending-count').textContent = pending.length ? `(${pending.length})` : '';
  $('pending-empty').hidden = pending.length > 0;

  const body = /** @type {HTMLElement} */ ($('history').querySelector('tbody'));
  body.replaceChildren(...history.map(historyRow));
  $('history').hidden = history.length === 0;
  $('history-empty').hidden = history.length > 0;

  // Expiry is not an event: look again when the next pending approval expires.
  clearTimeout(expiryTimer);
  const next = Math.min(...pending.map((a) => Date.parse(a.expires_at)));
  if (Number.isFinite(next)) expiryTimer = window.setTimeout(() => void refresh(), Math.max(0, next - Date.now()) + 250);
}

/** @param {any} a */
function whenOf(a) {
  return a.decided_at ?? a.expires_at;
}

/** @param {any} a */
function requester(a) {
  const chain = a.actors ?? (a.actor ? [a.actor] : []);
  return chain.length ? `${a.sub} (for ${chain.join(' → ')})` : a.sub;
}

/**
 * @param {any} a
 * @param {string} reason
 */
function card(a, reason) {
  const d = a.details;
  const explain = el('dl', { class: 'explain' });
  /**
   * @param {string} term
   * @param {string[] | undefined} items
   */
  const row = (term, items) => {
    if (!items || items.length === 0) return;
    explain.append(el('dt', {}, [term]), el('dd', {}, [items.length === 1 ? items[0] : el('ul', {}, items.map((i) => el('li', {}, [i])))]));
  };
  if (d) {
    row('kind', [d.kind]);
    row('writes', d.writes);
    row('reads', d.reads);
    row('programs', d.programs);
    row('paths', d.paths);
    row('rules', d.rules.map((/** @type {{id: string, at: string}} */ r) => `${r.id} (${r.at})`));
    row('note', d.notes);
    row('masks', d.masks.length ? d.masks : ['none']);
    row('limits', d.limits.length ? d.limits : ['none']);
  }
  row('approvers', [a.approvers.join(', ')]);
  if (a.quorum) row('quorum', [`${(a.approved_by ?? []).length} of ${a.quorum} approvals${a.approved_by?.length ? ` (${a.approved_by.join(', ')})` : ''}`]);
  if (a.lasting_ms) row('lasting', [`once approved, the same statement shape from ${a.sub} runs unasked for ${Math.round(a.lasting_ms / 60_000)} min`]);
  row('session', a.session_id ? [a.session_id] : undefined);

  const params = a.params?.length
    ? el('ol', { class: 'params', 'data-testid': 'params' }, a.params.map((/** @type {any} */ p, /** @type {number} */ i) => el('li', {}, [`$${i + 1} = ${paramText(p)}`])))
    : null;

  let decide;
  if (a.can_decide) {
    const input = /** @type {HTMLInputElement} */ (el('input', { class: 'reason', type: 'text', placeholder: 'reason (recorded; shown to the requester on deny)', 'aria-label': 'reason', maxlength: '2000' }));
    input.dataset.id = a.id;
    input.value = reason;
    const approve = el('button', { class: 'approve', type: 'button' }, ['Approve']);
    const deny = el('button', { class: 'deny', type: 'button' }, ['Deny']);
    const act = (/** @type {'approve' | 'deny'} */ what) => async () => {
      approve.setAttribute('disabled', '');
      deny.setAttribute('disabled', '');
      try {
        await api(`/approvals/${encodeURIComponent(a.id)}/${what}`, { method: 'POST', body: JSON.stringify(input.value ? { reason: input.value } : {}) });
        input.value = '';
        showError();
      } catch (e) {
        showError(`Could not ${what} ${a.id}: ${/** @type {Error} */ (e).message}`);
      }
      await refresh();
    };
    approve.addEventListener('click', act('approve'));
    deny.addEventListener('click', act('deny'));
    decide = el('div', { class: 'decide' }, [input, approve, deny]);
  } else {
    decide = el('p', { class: 'not-yours', 'data-testid': 'not-approvable' }, [
      a.requested_by_you ? `You requested this: a member of ${a.approvers.join(', ')} who is not you must decide it.` : (a.why_not ?? 'You cannot decide this approval.'),
    ]);
  }

  return el('article', { class: `card${a.requested_by_you ? ' own' : ''}`, 'data-approval': a.id }, [
    el('div', { class: 'head' }, [
      el('span', { class: 'requester' }, [requester(a)]),
      el('span', {}, ['on']),
      el('span', { class: 'resource' }, [a.resource]),
      el('span', { class: 'id' }, [a.id]),
      el('span', { class: 'expires', title: a.expires_at }, [`expires ${new Date(a.expires_at).toLocaleTimeString()}`]),
    ]),
    highlighted(a.statement, a.resource.startsWith('postgres/')),
    params,
    explain,
    decide,
  ]);
}

/** @param {any} a */
function historyRow(a) {
  return el('tr', { 'data-approval': a.id }, [
    el('td', { title: whenOf(a) }, [new Date(whenOf(a)).toLocaleString()]),
    el('td', { class: `status-${a.status}` }, [a.status]),
    el('td', {}, [requester(a)]),
    el('td', {}, [a.resource]),
    el('td', { class: 'statement', title: a.statement }, [a.statement]),
    el('td', {}, [a.decided_by ?? '']),
    el('td', {}, [a.reason ?? '']),
  ]);
}

/** @param {{value: string | null, format: string, truncated_from?: number}} p */
function paramText(p) {
  if (p.value === null) return 'NULL';
  const cut = p.truncated_from !== undefined ? ` … (first ${[...p.value].length} of ${p.truncated_from} characters)` : '';
  if (p.format === 'hex') return `bytes ${p.value}${cut} (hex)`;
  return `'${p.value.replace(/'/g, "''")}'${cut}${p.format === 'binary' ? ' (sent in binary)' : ''}`;
}

// ---------------------------------------------------------------------------------------------
// SQL highlighting: a small tokenizer, enough to make keywords, literals, parameters and
// comments stand out. It only chooses colours; the text shown is exactly the statement.

const KEYWORDS = new Set(
  ('select insert update delete merge into values set from where and or not null is in as on join left right inner outer full cross using ' +
    'group by order having limit offset returning with recursive create alter drop truncate table view index schema grant revoke to ' +
    'begin commit rollback copy do call execute prepare explain analyze union all distinct case when then else end exists like ilike ' +
    'between true false default primary key references cascade function procedure language returns replace if only lock for share')
    .split(' '),
);

const TOKEN = /(--[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|('(?:[^']|'')*'?)|(\$[A-Za-z_]*\$[\s\S]*?(?:\$[A-Za-z_]*\$|$))|("(?:[^"]|"")*"?)|(\$\d+)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_$]*)/g;

/**
 * @param {string} text
 * @param {boolean} sql
 */
function highlighted(text, sql) {
  const pre = el('pre', { class: 'statement', 'data-testid': 'statement' });
  if (!sql) {
    pre.textContent = text;
    return pre;
  }
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    const at = /** @type {number} */ (m.index);
    if (at > last) pre.append(text.slice(last, at));
    const [whole, com, str, dollar, ident, param, num, word] = m;
    const cls = com ? 'com' : str || dollar ? 'str' : ident ? 'ident' : param ? 'param' : num ? 'num' : word && KEYWORDS.has(word.toLowerCase()) ? 'kw' : '';
    pre.append(cls ? el('span', { class: cls }, [whole]) : whole);
    last = at + whole.length;
  }
  if (last < text.length) pre.append(text.slice(last));
  return pre;
}

// ---------------------------------------------------------------------------------------------

$('signin-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = /** @type {HTMLTextAreaElement} */ ($('token')).value.trim();
  if (!token) return showError('Paste your token first.');
  /** @type {HTMLTextAreaElement} */ ($('token')).value = '';
  void signIn({ token });
});
$('signout').addEventListener('click', () => void signOut());

const code = new URLSearchParams(location.hash.slice(1)).get('code');
if (code) {
  // The code is single use: take it out of the address bar (and history) before using it.
  history.replaceState(null, '', location.pathname);
  void signIn({ code });
} else {
  const saved = sessionStorage.getItem(STORE);
  signedIn = saved ? JSON.parse(saved) : null;
  if (signedIn && Date.parse(signedIn.expires_at) > Date.now()) start();
  else showSignIn();
}
