#!/usr/bin/env node
// `npx mnist-pipeline …`: the same command as `npm run pipeline -- …`, without the `--`.
import { launch } from './launch.js';

await launch('pipeline/cli/pipeline.ts');
