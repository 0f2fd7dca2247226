// Faster matmul kernels for the wasm backend, installed by re-registering them.
//
// On wasm a plain matMul runs on XNNPACK (64×784·784×128 in ~0.5 ms), but with
// transposeA or transposeB it falls back to a naive loop (~10× slower). A dense
// layer's backward pass uses exactly those forms (dW = xᵀ·dy, dx = dy·Wᵀ; see
// the customGrad of tf.fused.matMul in tfjs-core), so they dominated a training
// step. The replacement kernel transposes the flagged operand with the backend's
// own Transpose kernel and then runs the original kernel untransposed: the same
// products, summed in another order, so results agree to float32 rounding.
//
//   BatchMatMul(a, b, transposeA, transposeB)
//     → BatchMatMul(transposeA ? Transpose(a) : a, transposeB ? Transpose(b) : b, false, false)
//
// _FusedMatMul (matMul + bias + activation) is wrapped the same way. The originals stay
// reachable (originalKernel), so tests and benches can put them back to compare
// (test/helpers/original-kernels.ts).

import * as tf from '@tensorflow/tfjs';

/** Kernels whose inputs `a`, `b` and attrs `transposeA`, `transposeB` mean the same thing. */
export const MATMUL_KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;
export type MatMulKernel = (typeof MATMUL_KERNELS)[number];

/** Backends whose matmul is slow with transposed operands (measured; cpu and tensorflow are not). */
const SLOW_TRANSPOSED_MATMUL = new Set(['wasm']);

interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
}

/** The original kernel of each replacement, so a replacement is recognised and the original can be put back. */
const replaced = new WeakMap<tf.KernelFunc, tf.KernelConfig>();

/** The perm that swaps the last two axes of a rank-`rank` tensor. */
function swapLastTwo(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, axis) => axis);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return perm;
}

/** A kernelFunc that untransposes the operands of `original` first. */
function transposingFirst(original: tf.KernelFunc, transpose: tf.KernelFunc): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { transposeA = false, transposeB = false } = (attrs ?? {}) as MatMulAttrs;
    if (!transposeA && !transposeB) return original({ inputs, backend, attrs });
    const temporaries: tf.TensorInfo[] = [];
    const swapped = (x: tf.TensorInfo): tf.TensorInfo => {
      const out = transpose({ inputs: { x }, backend, attrs: { perm: swapLastTwo(x.shape.length) } }) as tf.TensorInfo;
      temporaries.push(out);
      return out;
    };
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    try {
      return original({
        inputs: { ...inputs, a: transposeA ? swapped(a) : a, b: transposeB ? swapped(b) : b },
        backend,
        attrs: { ...attrs, transposeA: false, transposeB: false },
      });
    } finally {
      for (const t of temporaries) (backend as tf.KernelBackend).disposeData(t.dataId); // Transpose may share its input's data; disposeData counts references
    }
  };
}

/** The backend's own kernel behind the replacement registered as `kernelName`, or undefined when it is not replaced. */
export function originalKernel(kernelName: MatMulKernel, backendName: string): tf.KernelConfig | undefined {
  const current = tf.getKernel(kernelName, backendName);
  return current === undefined ? undefined : replaced.get(current.kernelFunc);
}

/** Whether `backendName`'s BatchMatMul is currently the transposing replacement. */
export function fastKernelsInstalled(backendName: string): boolean {
  return originalKernel('BatchMatMul', backendName) !== undefined;
}

/**
 * Installs the transposing matmul kernels for `backendName` when its matmul
 * needs them (wasm); a no-op for other backends and when already installed.
 * Returns whether the fast kernels are active for that backend afterwards.
 */
export function installFastKernels(backendName: string): boolean {
  if (!SLOW_TRANSPOSED_MATMUL.has(backendName)) return false;
  const transpose = tf.getKernel('Transpose', backendName);
  if (transpose === undefined) return false;
  for (const kernelName of MATMUL_KERNELS) {
    if (originalKernel(kernelName, backendName) !== undefined) continue; // already replaced
    const original = tf.getKernel(kernelName, backendName);
    if (original === undefined) continue;
    const kernelFunc = transposingFirst(original.kernelFunc, transpose.kernelFunc);
    replaced.set(kernelFunc, original);
    tf.unregisterKernel(kernelName, backendName);
    // keeping setupFunc: if the backend is re-initialised, the original kernel binds to the new wasm module
    tf.registerKernel({ ...original, kernelFunc });
  }
  return fastKernelsInstalled(backendName);
}
