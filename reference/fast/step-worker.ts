// A worker thread of a StepTeam (reference/fast/threads.ts): serves its share of each
// training step until the team stops. Started through worker-boot.mjs, which loads this file.

import { workerData } from 'node:worker_threads';
import { serveStep, type WorkerSetup } from './threads.js';

serveStep((workerData as { setup: WorkerSetup }).setup);
