/**
 * Payload redaction. A job type names sensitive payload paths
 * (`redact: ['card.number', 'customer.email']`); their values are replaced by
 * a mask in every copy that leaves the handler: error snapshots, logs, spans,
 * and reads for callers without the right to see them. Error messages and
 * stacks are scrubbed of the sensitive values too, in case a handler put one
 * in its message.
 *
 * Paths are dot-separated keys; `*` matches any key or array index, and a
 * path that meets an array applies to each element (`items.card` masks the
 * `card` of every item).
 */
import type { Json } from '../job.ts';

export const MASK = '[REDACTED]';

export interface Redactable {
  redact?: readonly string[];
}

/** A copy of `payload` with every sensitive path masked. The payload itself is not changed. */
export function maskPayload(def: Redactable | undefined, payload: Json): Json {
  const paths = def?.redact;
  if (!paths?.length || payload === null || typeof payload !== 'object') return payload;
  const copy = structuredClone(payload);
  for (const p of paths) maskPath(copy, p.split('.'), 0);
  return copy;
}

function maskPath(node: Json, parts: string[], i: number): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    const key = parts[i];
    if (key === '*' || /^\d+$/.test(key)) {
      const targets = key === '*' ? node.keys() : [Number(key)];
      for (const idx of targets) {
        if (idx >= node.length) continue;
        if (i === parts.length - 1) node[idx] = MASK;
        else maskPath(node[idx], parts, i + 1);
      }
      return;
    }
    for (const el of node) maskPath(el, parts, i);
    return;
  }
  const keys = parts[i] === '*' ? Object.keys(node) : [parts[i]];
  for (const k of keys) {
    if (!Object.hasOwn(node, k)) continue;
    if (i === parts.length - 1) node[k] = MASK;
    else maskPath(node[k], parts, i + 1);
  }
}

/** The string forms of the sensitive values in `payload` (to scrub them from free text). */
export function sensitiveValues(def: Redactable | undefined, payload: Json): string[] {
  const paths = def?.redact;
  if (!paths?.length) return [];
  const found = new Set<string>();
  const collect = (node: Json) => {
    if (node === null) return;
    if (typeof node === 'object') {
      for (const v of Array.isArray(node) ? node : Object.values(node)) collect(v);
      return;
    }
    const s = String(node);
    if (s.length >= 3) found.add(s); // shorter values would mask innocent text
  };
  walkPaths(payload, paths, collect);
  return [...found].sort((a, b) => b.length - a.length);
}

/** Walks the sensitive paths and hands each value found to `collect`. */
function walkPaths(payload: Json, paths: readonly string[], collect: (v: Json) => void): void {
  const walk = (node: Json, parts: string[], i: number) => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) {
      const key = parts[i];
      if (key === '*' || /^\d+$/.test(key)) {
        const els = key === '*' ? node : [node[Number(key)]];
        for (const el of els) if (el !== undefined) i === parts.length - 1 ? collect(el) : walk(el, parts, i + 1);
        return;
      }
      for (const el of node) walk(el, parts, i);
      return;
    }
    const keys = parts[i] === '*' ? Object.keys(node) : [parts[i]];
    for (const k of keys) {
      if (!Object.hasOwn(node, k)) continue;
      if (i === parts.length - 1) collect(node[k]);
      else walk(node[k], parts, i + 1);
    }
  };
  for (const p of paths) walk(payload, p.split('.'), 0);
}

/** Replaces every occurrence of the sensitive values in `text`. */
export function scrub(text: string, values: readonly string[]): string {
  let out = text;
  for (const v of values) if (out.includes(v)) out = out.split(v).join(MASK);
  return out;
}

/** A job as someone without the right to see its sensitive fields may read it. */
export function maskJob<J extends { payload: Json; lastError?: unknown }>(def: Redactable | undefined, job: J): J {
  if (!def?.redact?.length) return job;
  const lastError = job.lastError as { payload?: Json } | null | undefined;
  return {
    ...job,
    payload: maskPayload(def, job.payload),
    ...(lastError && lastError.payload !== undefined ? { lastError: { ...lastError, payload: maskPayload(def, lastError.payload) } } : {}),
  };
}
