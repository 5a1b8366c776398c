/**
 * Schedules defined in code, from a jobs file: its `schedules` export, an
 * array of `defineSchedule(...)` results (or a map of name to options).
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../errors.ts';
import { defineSchedule, type ScheduleDefinition, type ScheduleOptions } from './schedules.ts';

export async function loadSchedules(file: string): Promise<ScheduleDefinition[]> {
  const mod = await import(pathToFileURL(resolve(file)).href);
  const exported = mod.schedules;
  if (exported == null) return [];
  if (Array.isArray(exported)) {
    return exported.map((d: ScheduleDefinition) => {
      const { name, source: _source, ...options } = d ?? ({} as ScheduleDefinition);
      return defineSchedule(name, options, 'code');
    });
  }
  if (typeof exported === 'object') return Object.entries(exported as Record<string, ScheduleOptions>).map(([name, o]) => defineSchedule(name, o, 'code'));
  throw new ConfigError(`--jobs: the schedules export of ${file} must be an array of defineSchedule(...) results`);
}
