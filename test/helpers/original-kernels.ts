// The backend's own matmul kernels put back in place of the fast ones (pipeline/tfjs/fast-kernels.ts),
// for the tests and benches that compare the two; the pipeline installs the fast kernels and never removes them.

import * as tf from '@tensorflow/tfjs';
import { MATMUL_KERNELS, originalKernel } from '../../pipeline/tfjs/fast-kernels.js';

/** Restores `backendName`'s original matmul kernels; a no-op for a kernel that is not replaced. */
export function uninstallFastKernels(backendName: string): void {
  for (const kernelName of MATMUL_KERNELS) {
    const original = originalKernel(kernelName, backendName);
    if (original === undefined) continue;
    tf.unregisterKernel(kernelName, backendName);
    tf.registerKernel(original);
  }
}
