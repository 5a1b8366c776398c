// The dead letter queue, grouped by error fingerprint, with redrive and purge behind a confirmation.
import { ago, esc, state } from './util.js';

export function mountDlq(root, ctx) {
  root.innerHTML = `<h1>Dead letter queue <span class="muted" id="dlq-total"></span></h1><div id="dlq-groups"></div>`;
  const el = root.querySelector('#dlq-groups');
  let open = null;
  let busy = false;
  const act = async (title, text, okLabel, path, sel, done) => {
    if (!(await ctx.confirm(title, text, okLabel))) return;
    busy = true;
    try {
      const r = await ctx.api('POST', path, sel);
      ctx.flash(root, done(r));
    } catch (err) {
      ctx.flash(root, err.message, true);
    } finally {
      busy = false;
    }
    await refresh();
  };
  el.addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-action]');
    if (b) {
      const fp = b.dataset.fp;
      const count = b.dataset.count;
      if (b.dataset.action === 'redrive') {
        await act('Redrive this group?', `${count} dead job(s) with fingerprint ${fp} go back to the queue with a fresh attempt budget.`, 'Redrive', '/api/dlq/redrive', { fingerprint: fp }, (r) => `Redriven ${r.redriven} job(s).`);
      } else {
        await act('Purge this group?', `${count} dead job(s) with fingerprint ${fp} and their history are deleted. This cannot be undone.`, 'Purge', '/api/dlq/purge', { fingerprint: fp }, (r) => `Purged ${r.purged} job(s).`);
      }
      return;
    }
    const tr = e.target.closest('tr[data-fp]');
    if (tr) {
      open = open === tr.dataset.fp ? null : tr.dataset.fp;
      await refresh();
    }
  });
  const refresh = async () => {
    if (busy) return;
    const d = await ctx.api('GET', '/api/dlq');
    root.querySelector('#dlq-total').textContent = `${d.total} job(s)`;
    const jobs = open ? (await ctx.api('GET', `/api/dlq?fingerprint=${encodeURIComponent(open)}&limit=50`)).jobs ?? [] : [];
    if (!d.groups.length) {
      el.innerHTML = '<div class="panel"><p class="muted">The dead letter queue is empty.</p></div>';
      return;
    }
    el.innerHTML = `<div class="panel"><table><tr><th>Fingerprint</th><th>Types</th><th>Count</th><th>Reason</th><th>Sample error</th><th>Last</th><th></th></tr>${d.groups
      .map((g) => {
        const buttons = [
          ctx.can('redrive') ? `<button type="button" data-action="redrive" data-fp="${esc(g.fingerprint)}" data-count="${g.count}">Redrive</button>` : '',
          ctx.can('purge') ? `<button type="button" class="danger" data-action="purge" data-fp="${esc(g.fingerprint)}" data-count="${g.count}">Purge</button>` : '',
        ].join(' ');
        const detail =
          open === g.fingerprint
            ? `<tr><td colspan="7"><table>${jobs.map((j) => `<tr><td class="mono"><a href="#/jobs/${esc(j.id)}">${esc(j.id)}</a></td><td>${esc(j.type)}</td><td>${state(j.state)}</td><td class="error">${esc(j.lastError?.message ?? '')}</td></tr>`).join('')}</table></td></tr>`
            : '';
        return `<tr class="click" data-fp="${esc(g.fingerprint)}"><td class="mono">${esc(g.fingerprint)}</td><td>${esc(g.types.join(', '))}</td><td class="mono">${esc(g.count)}</td><td>${esc(g.reasons.join(', '))}</td><td class="error">${esc(g.sampleError ? `${g.sampleError.name}: ${g.sampleError.message}` : '')}</td><td>${esc(ago(g.lastDeadAt))}</td><td>${buttons}</td></tr>${detail}`;
      })
      .join('')}</table></div>`;
  };
  return ctx.poll(refresh, 3000);
}
