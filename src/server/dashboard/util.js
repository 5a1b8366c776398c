// Small helpers shared by the dashboard's pages.

/** Escapes text for HTML: everything shown from the API goes through this. */
export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

export function time(ms) {
  return ms == null ? '–' : new Date(ms).toLocaleString();
}

export function ago(ms) {
  if (ms == null) return '–';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

export function duration(ms) {
  if (ms == null) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)}m ${Math.round((ms % 60_000) / 1000)}s`;
}

export function state(s) {
  return `<span class="state ${esc(s)}">${esc(s)}</span>`;
}

export function json(v) {
  return `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;
}

/** JSON inline when short, folded when long. */
export function details(data) {
  if (data == null) return '';
  const text = JSON.stringify(data);
  if (text.length <= 160) return esc(text);
  return `<details><summary>${esc(text.slice(0, 120))}…</summary>${json(data)}</details>`;
}
