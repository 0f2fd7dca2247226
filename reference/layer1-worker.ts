// A worker thread of a Layer1Team (reference/threads.ts): serves its slice of layer 1
// until the team stops. Started through worker-boot.mjs, which loads this file.

import { workerData } from 'node:worker_threads';
import { serveLayer1, type WorkerSetup } from './threads.js';

serveLayer1((workerData as { setup: WorkerSetup }).setup);
