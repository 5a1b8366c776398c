// Jobs: a searchable, filterable list, and each job's page (timeline, attempts, payload, result, workflow).
import { details, duration, esc, json, state, time } from './util.js';

const STATES = ['', 'scheduled', 'available', 'running', 'completed', 'dead', 'cancelled', 'compensated'];

export function mountJobs(root, ctx, [query]) {
  const params = new URLSearchParams(query ?? '');
  root.innerHTML = `<h1>Jobs</h1>
    <form class="filters" id="job-filters">
      <select name="state" aria-label="state">${STATES.map((s) => `<option value="${s}" ${params.get('state') === s ? 'selected' : ''}>${s || 'any state'}</option>`).join('')}</select>
      <input name="type" placeholder="type" value="${esc(params.get('type') ?? '')}" aria-label="type">
      <input name="queue" placeholder="queue" value="${esc(params.get('queue') ?? '')}" aria-label="queue">
      <input name="text" placeholder="search: id, key, error…" value="${esc(params.get('text') ?? '')}" aria-label="search">
      <button class="primary" type="submit">Filter</button>
    </form>
    <div class="panel"><table id="job-table"></table><div class="actions"><button id="more" type="button" hidden>Load more</button></div></div>`;
  const form = root.querySelector('#job-filters');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.set(k, String(v));
    ctx.go(`#/jobs${q.size ? `?${q}` : ''}`);
  });
  const table = root.querySelector('#job-table');
  const more = root.querySelector('#more');
  const head = '<tr><th>ID</th><th>Type</th><th>Queue</th><th>State</th><th>Attempt</th><th>Run at</th><th>Last error</th></tr>';
  const row = (j) =>
    `<tr class="click" data-job="${esc(j.id)}"><td class="mono"><a href="#/jobs/${esc(j.id)}">${esc(j.id)}</a></td><td>${esc(j.type)}</td><td>${esc(j.queue)}</td><td>${state(j.state)}</td><td class="mono">${esc(j.attempt)}/${esc(j.maxAttempts)}</td><td>${esc(time(j.runAt))}</td><td class="error">${esc(j.lastError?.message ?? '')}</td></tr>`;
  table.addEventListener('click', (e) => {
    const tr = e.target.closest('tr[data-job]');
    if (tr && !e.target.closest('a')) ctx.go(`#/jobs/${tr.dataset.job}`);
  });
  // The table shows the newest jobs down to the id `until` (null: the first page only). Every refresh re-reads
  // all of them from the top, so rows pushed down by new jobs stay in view; "Load more" moves `until` a page further.
  let until = null;
  let next = null;
  let reads = 0;
  more.addEventListener('click', async () => {
    const page = await ctx.api('GET', `/api/jobs?${withCursor(params, next)}`);
    until = page.nextCursor === null ? 0 : Number(page.nextCursor);
    await refresh();
  });
  const refresh = async () => {
    const read = ++reads;
    let page = await ctx.api('GET', `/api/jobs?${params}`);
    let rows = page.jobs;
    while (until !== null && page.nextCursor && Number(page.nextCursor) > until) {
      page = await ctx.api('GET', `/api/jobs?${withCursor(params, page.nextCursor)}`);
      rows = rows.concat(page.jobs);
    }
    if (read !== reads) return; // a later refresh (after "Load more") draws the table
    next = page.nextCursor;
    table.innerHTML = head + (rows.length ? rows.map(row).join('') : '<tr><td colspan="7" class="muted">no jobs match</td></tr>');
    more.hidden = !next;
  };
  return ctx.poll(refresh, 3000);
}

function withCursor(params, cursor) {
  const q = new URLSearchParams(params);
  if (cursor) q.set('cursor', cursor);
  return q;
}

export function mountJob(root, ctx, [id]) {
  root.innerHTML = `<p><a href="#/jobs">← Jobs</a></p><div id="job"></div>`;
  const el = root.querySelector('#job');
  let busy = false;
  const act = async (label, fn) => {
    busy = true;
    try {
      await fn();
      ctx.flash(root, label);
    } catch (err) {
      ctx.flash(root, err.message, true);
    } finally {
      busy = false;
    }
    await refresh();
  };
  const refresh = async () => {
    if (busy) return;
    const d = await ctx.api('GET', `/api/jobs/${id}`);
    const j = d.job;
    const live = ['scheduled', 'available', 'running'].includes(j.state);
    const buttons = [
      j.state === 'dead' && ctx.can('retry') ? '<button id="retry" class="primary" type="button">Redrive</button>' : '',
      live && ctx.can('cancel') ? '<button id="cancel" class="danger" type="button">Cancel</button>' : '',
    ].join('');
    el.innerHTML = `<h1>Job ${esc(j.id)} · ${esc(j.type)} <span data-testid="job-state">${state(j.state)}</span></h1>
      <div class="actions">${buttons}</div>
      <div class="grid">
        <div class="panel kv">
          <div>Queue</div><div>${esc(j.queue)}</div>
          <div>Attempt</div><div class="mono">${esc(j.attempt)} of ${esc(j.maxAttempts)}</div>
          <div>Priority</div><div class="mono">${esc(j.priority)}</div>
          <div>Run at</div><div>${esc(time(j.runAt))}</div>
          <div>Created</div><div>${esc(time(j.createdAt))}</div>
          <div>Finished</div><div>${esc(time(j.finishedAt))}</div>
          <div>Idempotency key</div><div class="mono">${esc(j.idempotencyKey ?? '–')}</div>
          <div>Dead reason</div><div>${esc(j.deadReason ?? '–')}</div>
          <div>Trace id</div><div class="mono" data-testid="trace-id">${esc(d.traceId ?? '–')}</div>
          <div>Parent</div><div>${j.parentId ? `<a href="#/jobs/${esc(j.parentId)}">${esc(j.parentId)}</a>` : '–'}</div>
        </div>
        <div class="panel"><h2>Payload ${j.masked ? '<span class="badge" data-testid="masked">masked for your role</span>' : ''}</h2><div data-testid="payload">${json(j.payload)}</div></div>
        <div class="panel"><h2>Result</h2>${j.result == null ? '<p class="muted">none</p>' : json(j.result)}${j.lastError ? `<h2>Last error</h2><p class="error">${esc(j.lastError.name)}: ${esc(j.lastError.message)}</p><p class="muted mono">fingerprint ${esc(j.lastError.fingerprint)}</p>` : ''}</div>
      </div>
      ${d.workflow ? workflowPanel(d.workflow) : ''}
      <div class="panel"><h2>Attempts</h2><table><tr><th>#</th><th>Worker</th><th>Started</th><th>Duration</th><th>Outcome</th><th>Error</th></tr>${d.attempts
        .map((a) => `<tr><td class="mono">${esc(a.attempt)}</td><td class="mono">${esc(a.worker ?? '–')}</td><td>${esc(time(a.startedAt))}</td><td class="mono">${esc(a.endedAt == null ? 'running' : duration(a.endedAt - a.startedAt))}</td><td>${state(a.outcome)}</td><td class="error">${esc(a.error ? `${a.error.name}: ${a.error.message}` : '')}</td></tr>`)
        .join('')}</table></div>
      <div class="panel"><h2>Timeline</h2><table data-testid="timeline"><tr><th>Time</th><th>Event</th><th>Attempt</th><th>Worker</th><th>Details</th></tr>${d.history
        .map((e) => `<tr><td>${esc(time(e.at))}</td><td>${esc(e.kind)}</td><td class="mono">${esc(e.attempt)}</td><td class="mono">${esc(e.worker ?? '–')}</td><td class="mono">${details(e.data)}</td></tr>`)
        .join('')}</table></div>`;
    el.querySelector('#retry')?.addEventListener('click', async () => {
      if (await ctx.confirm('Redrive this job?', `Job ${j.id} goes back to the queue with a fresh attempt budget.`, 'Redrive')) {
        await act('Redriven: the job is back in the queue.', () => ctx.api('POST', `/api/jobs/${j.id}/retry`));
      }
    });
    el.querySelector('#cancel')?.addEventListener('click', async () => {
      if (await ctx.confirm('Cancel this job?', `Job ${j.id} will not run again; a running attempt loses its lease.`, 'Cancel job')) {
        await act('Cancelled.', () => ctx.api('POST', `/api/jobs/${j.id}/cancel`));
      }
    });
  };
  return ctx.poll(refresh, 2000);
}

function workflowPanel(w) {
  const steps = Array.isArray(w.steps) ? w.steps : [];
  const facts = [
    ['Status', state(w.status)],
    ['Named state', esc(w.state ?? '–')],
    ['Waiting for', esc(w.waiting ?? '–')],
    ['Version', esc(w.version)],
    ...(w.error ? [['Failed with', `<span class="error">${esc(w.error.name)}: ${esc(w.error.message)}</span>`]] : []),
  ];
  return `<div class="panel" data-panel="workflow"><h2>Workflow</h2>
    <div class="kv">${facts.map(([k, v]) => `<div>${k}</div><div>${v}</div>`).join('')}</div>
    <h2>Steps</h2>
    <table data-testid="workflow-steps"><tr><th>#</th><th>Step</th><th>Kind</th><th>Status</th><th>Attempts</th><th>Started</th><th>Duration</th><th>Result or error</th></tr>${steps
      .map(
        (st) =>
          `<tr><td class="mono">${esc(st.seq)}</td><td>${esc(st.name)}</td><td>${esc(st.kind)}</td><td>${state(st.status)}${st.compensation && st.compensation !== 'none' ? ` <span class="muted">compensation ${esc(st.compensation)}</span>` : ''}</td><td class="mono">${esc(st.attempts)}</td><td>${esc(time(st.startedAt))}</td><td class="mono">${esc(st.finishedAt == null ? '–' : duration(st.finishedAt - st.startedAt))}</td><td class="mono ${st.error ? 'error' : ''}">${st.error ? esc(`${st.error.name}: ${st.error.message}`) : details(st.result)}</td></tr>`,
      )
      .join('')}</table>
    ${Array.isArray(w.signals) && w.signals.length ? `<h2>Signals</h2>${json(w.signals)}` : ''}</div>`;
}
