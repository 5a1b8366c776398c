#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx, so job files may be .ts too.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli/main.ts');
