// Breakers (state, recent failures, force), schedules (next fire times, pause), audit (verify, recent actions).
import { details, esc, json, state, time } from './util.js';

function unavailable(root, title, what) {
  root.innerHTML = `<h1>${esc(title)}</h1><div class="panel"><p class="muted">${esc(what)} not available in this build.</p></div>`;
}

async function act(root, ctx, title, text, okLabel, path, refresh) {
  if (!(await ctx.confirm(title, text, okLabel))) return;
  try {
    await ctx.api('POST', path);
    ctx.flash(root, `${okLabel}: done.`);
  } catch (err) {
    ctx.flash(root, err.message, true);
  }
  await refresh();
}

export function mountBreakers(root, ctx) {
  if (!ctx.has('breakers')) return unavailable(root, 'Breakers', 'Circuit breakers are');
  root.innerHTML = '<h1>Circuit breakers</h1><div class="panel"><table id="breakers"></table></div>';
  const table = root.querySelector('#breakers');
  const refresh = async () => {
    const { breakers } = await ctx.api('GET', '/api/breakers');
    const can = ctx.can('breakers');
    table.innerHTML = `<tr><th>Name</th><th>State</th><th>Failures (window)</th><th>In a row</th><th>Trips</th><th>Opened</th><th>Open until</th><th>Last error</th><th>Job types</th><th></th></tr>${breakers
      .map((b) => {
        const n = esc(b.name);
        const buttons = can ? ['open', 'close', 'reset'].map((a) => `<button type="button" data-name="${n}" data-action="${a}">${a === 'open' ? 'Force open' : a === 'close' ? 'Force close' : 'Reset'}</button>`).join(' ') : '';
        const win = b.window ? `${b.window.failures}/${b.window.calls}` : '–';
        return `<tr><td>${n}</td><td>${state(b.state)}${b.forced ? ` <span class="badge">forced ${esc(b.forced)}</span>` : ''}</td><td class="mono">${esc(win)}</td><td class="mono">${esc(b.consecutiveFailures ?? '–')}</td><td class="mono">${esc(b.trips ?? '–')}</td><td>${esc(time(b.openedAt))}</td><td>${esc(time(b.openUntil))}</td><td class="error">${esc(b.lastError ?? '')}</td><td>${esc((b.types ?? []).join(', '))}</td><td>${buttons}</td></tr>`;
      })
      .join('')}`;
  };
  table.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (b) void act(root, ctx, `${b.textContent} breaker ${b.dataset.name}?`, 'Workers follow the forced state until it is reset.', b.textContent, `/api/breakers/${encodeURIComponent(b.dataset.name)}/${b.dataset.action}`, refresh);
  });
  return ctx.poll(refresh, 2000);
}

export function mountSchedules(root, ctx) {
  if (!ctx.has('schedules')) return unavailable(root, 'Schedules', 'Schedules are');
  root.innerHTML = '<h1>Schedules</h1><div class="panel"><table id="schedules"></table></div>';
  const table = root.querySelector('#schedules');
  const refresh = async () => {
    const { schedules } = await ctx.api('GET', '/api/schedules');
    const can = ctx.can('schedules');
    table.innerHTML = `<tr><th>Name</th><th>Cron</th><th>Job type</th><th>Next fire</th><th>Last fire</th><th>State</th><th></th></tr>${schedules
      .map((s) => {
        const paused = !!s.paused;
        const button = can ? `<button type="button" data-name="${esc(s.name)}" data-action="${paused ? 'resume' : 'pause'}">${paused ? 'Resume' : 'Pause'}</button>` : '';
        return `<tr><td>${esc(s.name)}</td><td class="mono">${esc(s.cron ?? s.pattern ?? '')}</td><td>${esc(s.type ?? s.jobType ?? '')}</td><td>${esc(time(s.nextFireAt ?? s.nextRunAt))}</td><td>${esc(time(s.lastFireAt ?? s.lastRunAt))}</td><td>${state(paused ? 'paused' : 'active')}</td><td>${button}</td></tr>`;
      })
      .join('')}`;
  };
  table.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    if (b) void act(root, ctx, `${b.textContent} schedule ${b.dataset.name}?`, b.dataset.action === 'pause' ? 'It will not fire until resumed.' : 'It fires again at its next time.', b.textContent, `/api/schedules/${encodeURIComponent(b.dataset.name)}/${b.dataset.action}`, refresh);
  });
  return ctx.poll(refresh, 5000);
}

export function mountAudit(root, ctx) {
  if (!ctx.has('audit')) return unavailable(root, 'Audit', 'The audit trail is');
  root.innerHTML = `<h1>Audit trail</h1><div class="panel"><h2>Verification</h2><div class="actions"><button id="verify-again" type="button">Verify again</button></div><div id="verify"></div></div><div class="panel"><h2>Recent operator actions</h2><table id="audit"></table></div>`;
  // Verifying walks the whole chain (every job submission too): once when the page opens and on request,
  // never on the refresh timer, or an open tab would keep the server reading the entire trail.
  const verifyEl = root.querySelector('#verify');
  const button = root.querySelector('#verify-again');
  const verify = async () => {
    button.disabled = true;
    verifyEl.innerHTML = '<p class="muted" data-testid="audit-verify">verifying…</p>';
    try {
      const v = await ctx.api('GET', '/api/audit/verify');
      const ok = v.ok ?? v.valid;
      verifyEl.innerHTML = `<p data-testid="audit-verify">${ok ? '<span class="state completed">chain intact</span>' : `<span class="state dead">chain broken${v.problem ? `: ${esc(v.problem.reason)} at entry ${esc(v.problem.seq)}` : ''}</span>`} <span class="muted">checked ${esc(time(Date.now()))}</span></p>${json(v)}`;
    } catch (err) {
      verifyEl.innerHTML = `<p class="error" data-testid="audit-verify">${esc(err.message)}</p>`;
    } finally {
      button.disabled = false;
    }
  };
  button.addEventListener('click', () => void verify());
  void verify();
  const refresh = async () => {
    const recent = await ctx.api('GET', '/api/audit?limit=100&kind=operator');
    root.querySelector('#audit').innerHTML = `<tr><th>Time</th><th>Actor</th><th>Action</th><th>Target</th><th>Details</th></tr>${recent.entries
      .map((e) => `<tr><td>${esc(time(e.at ?? e.time))}</td><td>${esc(e.actor)}</td><td>${esc(e.action)}</td><td class="mono">${esc(e.target ?? '')}</td><td class="mono">${details(e.details)}</td></tr>`)
      .join('')}`;
  };
  return ctx.poll(refresh, 5000);
}
