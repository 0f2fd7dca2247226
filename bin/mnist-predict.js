#!/usr/bin/env node
// `npx mnist-predict …`: the same command as `npm run predict -- …`, without the `--`.
// Plain JavaScript, so that it runs without a build: tsx then loads the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../pipeline/cli/predict.ts', import.meta.url).href);
