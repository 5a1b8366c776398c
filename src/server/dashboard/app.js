// The dashboard shell: sign-in with an API token (kept in sessionStorage, sent
// as a bearer header, never a cookie), the API client, the router, and the
// confirmation dialog. Pages live in their own modules.
import { esc } from './util.js';
import { mountOverview } from './overview.js';
import { mountJobs, mountJob } from './jobs.js';
import { mountDlq } from './dlq.js';
import { mountBreakers, mountSchedules, mountAudit } from './ops.js';

const TOKEN_KEY = 'rebound.token';
const main = document.getElementById('main');
let who = null;
let unmount = null;

class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = error?.code;
    this.field = error?.field;
  }
}

async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit' });
  const data = await res.json().catch(() => null);
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    who = null;
    showLogin(data?.error?.message);
    throw new ApiError(401, data?.error);
  }
  if (!res.ok) throw new ApiError(res.status, data?.error);
  return data;
}

function confirmDialog(title, text, okLabel = 'Confirm') {
  const modal = document.getElementById('modal');
  document.getElementById('modal-title').textContent = title;
  document.getElementById('modal-text').textContent = text;
  const ok = document.getElementById('modal-ok');
  const cancel = document.getElementById('modal-cancel');
  ok.textContent = okLabel;
  modal.hidden = false;
  ok.focus();
  return new Promise((resolve) => {
    const done = (v) => {
      modal.hidden = true;
      ok.onclick = cancel.onclick = null;
      resolve(v);
    };
    ok.onclick = () => done(true);
    cancel.onclick = () => done(false);
  });
}

function flash(root, message, bad = false) {
  const el = document.createElement('div');
  el.className = bad ? 'flash bad' : 'flash';
  el.setAttribute('role', 'status');
  el.textContent = message;
  root.prepend(el);
  setTimeout(() => el.remove(), 6000);
}

/** Runs `fn` now and every `ms` until the page is left; errors are shown, not thrown. */
function poll(fn, ms = 2000) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    try {
      await fn();
    } catch (err) {
      if (err.status !== 401) console.warn(err);
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

const ctx = {
  api,
  poll,
  flash,
  confirm: confirmDialog,
  can: (permission) => !!who && who.permissions.includes(permission),
  has: (capability) => !!who && !!who.capabilities[capability],
  go: (hash) => (location.hash = hash),
};

const routes = [
  [/^#\/overview$/, mountOverview, 'overview'],
  [/^#\/jobs\/(\d+)$/, mountJob, 'jobs'],
  [/^#\/jobs(?:\?(.*))?$/, mountJobs, 'jobs'],
  [/^#\/dlq$/, mountDlq, 'dlq'],
  [/^#\/breakers$/, mountBreakers, 'breakers'],
  [/^#\/schedules$/, mountSchedules, 'schedules'],
  [/^#\/audit$/, mountAudit, 'audit'],
];

function route() {
  if (!who) return;
  unmount?.();
  unmount = null;
  const hash = location.hash || '#/overview';
  const found = routes.find(([re]) => re.test(hash));
  if (!found) {
    location.hash = '#/overview';
    return;
  }
  const [re, mount, nav] = found;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === nav);
  main.innerHTML = '';
  unmount = mount(main, ctx, re.exec(hash).slice(1)) ?? null;
}

function showLogin(message) {
  unmount?.();
  unmount = null;
  document.getElementById('who').innerHTML = '';
  main.innerHTML = `<form class="panel login" id="login">
    <h1>Sign in</h1>
    <p class="muted">Paste an API token (create one with <code>rebound token create --role viewer --name you</code>). It is kept in this tab only.</p>
    ${message ? `<p class="error">${esc(message)}</p>` : ''}
    <input id="token" type="password" autocomplete="off" placeholder="rbt_…" aria-label="API token" required>
    <button class="primary" type="submit">Sign in</button>
  </form>`;
  document.getElementById('login').addEventListener('submit', async (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value.trim());
    await start();
  });
}

async function start() {
  try {
    who = await api('GET', '/api/whoami');
  } catch (err) {
    if (err.status !== 401) main.innerHTML = `<p class="error">Cannot reach the API: ${esc(err.message)}</p>`;
    return;
  }
  const banner = document.getElementById('banner');
  banner.hidden = !who.open;
  banner.textContent = who.open ? 'No API tokens exist: the server listens on loopback only and every local caller acts as admin.' : '';
  document.getElementById('who').innerHTML = `<span data-testid="whoami">${esc(who.name)} · <strong>${esc(who.role)}</strong></span>${
    who.open ? '' : '<button id="signout" type="button">Sign out</button>'
  }`;
  document.getElementById('signout')?.addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    who = null;
    showLogin();
  });
  route();
}

window.addEventListener('hashchange', route);
void start();
