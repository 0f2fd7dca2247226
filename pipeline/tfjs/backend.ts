// Chooses the TF.js backend at run time: tfjs-node where its native binding
// loads, else WebAssembly, else the pure-JS cpu backend.

import * as tf from '@tensorflow/tfjs';
import type { BackendName } from '../config.js';
import { installFastKernels } from './fast-kernels.js';

const TF_NAMES: Record<Exclude<BackendName, 'auto'>, string> = { node: 'tensorflow', wasm: 'wasm', cpu: 'cpu' };

async function register(name: Exclude<BackendName, 'auto'>): Promise<void> {
  if (name === 'node') await import('@tensorflow/tfjs-node' as string);
  else if (name === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  // cpu ships inside @tensorflow/tfjs
}

/**
 * Activates `requested` (or the best that loads, for auto) and returns the
 * TF.js name of the backend that is now active: 'tensorflow', 'wasm' or 'cpu'.
 */
export async function selectBackend(requested: BackendName, log: (line: string) => void = () => {}): Promise<string> {
  const order: Exclude<BackendName, 'auto'>[] = requested === 'auto' ? ['node', 'wasm', 'cpu'] : [requested];
  const failures: string[] = [];
  for (const name of order) {
    try {
      await register(name);
      if (await tf.setBackend(TF_NAMES[name])) {
        await tf.ready();
        installFastKernels(tf.getBackend()); // transposed matmuls are slow on wasm; a no-op elsewhere
        return tf.getBackend();
      }
      failures.push(`${name}: setBackend returned false`);
    } catch (error) {
      const missing = (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND'; // an optional package, not a fault
      failures.push(
        `${name}: ${missing ? `${name === 'node' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-backend-wasm'} is not installed` : (error as Error).message.split('\n')[0]}`,
      );
    }
    if (requested === 'auto') log(`TF.js backend ${failures[failures.length - 1]}; trying the next`);
  }
  throw new Error(`--backend ${requested}: no backend could be started (${failures.join('; ')})`);
}
