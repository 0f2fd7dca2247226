#!/usr/bin/env node
// `npx mnist-predict …`: the same command as `npm run predict -- …`, without the `--`.
import { launch } from './launch.js';

await launch('pipeline/cli/predict.ts');
