// The one error for a run stopped by SIGINT / SIGTERM, wherever it stops: between
// training batches, between stages, in a stage's process, or waiting for a lock.
// It lives with the epoch loop on the ground floor (reference/ imports nothing of ours).

export { InterruptedError } from '../../reference/epochs.js';
