// The one error for a run stopped by SIGINT / SIGTERM, wherever it stops: between
// training batches, between stages, in a stage's process, or waiting for a lock.

export class InterruptedError extends Error {
  override name = 'InterruptedError';
}
