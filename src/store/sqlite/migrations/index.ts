/**
 * Every sqlite migration, in version order. Each capability keeps its own file
 * and its own range of versions, so capabilities never renumber each other:
 * core 1-9, self-healing 10-19, workflows 20-29, coordination 30-39,
 * visibility 40-49, operator surface 50-59.
 * Append new versions; never edit one that has been applied.
 */
import { coreMigrations } from './core.ts';
import { coordinationMigrations } from './coordination.ts';
import { selfHealingMigrations } from './self-healing.ts';
import { visibilityMigrations } from './visibility.ts';
import { operatorMigrations } from './operator.ts';
import { workflowMigrations } from './workflows.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const migrations: Migration[] = [...coreMigrations, ...coordinationMigrations, ...selfHealingMigrations, ...visibilityMigrations, ...operatorMigrations, ...workflowMigrations].sort((a, b) => a.version - b.version);
