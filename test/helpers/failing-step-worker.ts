// A StepTeam worker that fails as soon as it touches any work: for testing that a
// failing worker surfaces as an error on the main thread, not as a hang.

import { workerData } from 'node:worker_threads';
import { serveStep, type WorkerSetup } from '../../reference/fast/threads.js';

const { setup } = workerData as { setup: WorkerSetup };
const planted = (): never => {
  throw new Error('planted failure');
};
// Every piece of work reads the batch through one of these.
const ws = Object.defineProperties({ ...setup.ws }, { xRows: { get: planted }, xCols: { get: planted }, a1Rows: { get: planted } });
serveStep({ ...setup, ws });
