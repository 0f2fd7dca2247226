// Starts a worker thread on a TypeScript module, workerData.module (a file URL).
// Node 20 cannot run TypeScript itself, and the parent's `--import tsx` hooks do
// not reach worker threads there, so the module is loaded through tsx's API.
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

await tsImport(workerData.module, import.meta.url);
