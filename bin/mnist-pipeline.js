#!/usr/bin/env node
// `npx mnist-pipeline …`: the same command as `npm run pipeline -- …`, without the `--`.
// Plain JavaScript, so that it runs without a build: tsx then loads the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../pipeline/cli/pipeline.ts', import.meta.url).href);
