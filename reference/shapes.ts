// The network's shapes, declared once.
// B = batch, D = 784 (28×28 pixels), H1 = 128, H2 = 64, K = 10 (digits).
// Every matrix is a row-major Float32Array; a kernel (IN, OUT) has stride OUT,
// which is also TF.js's layout for a dense layer's kernel.

export const D = 784;
export const H1 = 128;
export const H2 = 64;
export const K = 10;
export const IMAGE_SIDE = 28;

/** The most threads in the reference's team (reference/fast/threads.ts); declared here so pipeline/config.ts need not import reference/fast/. */
export const MAX_THREADS = 8;

/** Any float buffer: Float32Array trains, Float64Array checks gradients. */
export type FloatArray = Float32Array | Float64Array;

/**
 * Images are kept as the IDX files store them, one byte a pixel (0–255): a quarter of float32's
 * memory in the dataset, the cache and every process. The network sees p / 255 in float32, made
 * per batch or chunk by scalePixels, the one place that scales: the same floats as scaling the whole split up front.
 */
export type Pixels = Uint8Array;

/** out[i] = pixels[i] / 255, as float32: the network's input in [0, 1]. */
export function scalePixels(pixels: Pixels, out: Float32Array = new Float32Array(pixels.length)): Float32Array {
  for (let i = 0; i < pixels.length; i++) out[i] = pixels[i]! / 255;
  return out;
}

export interface Params<T extends FloatArray = Float32Array> {
  w1: T; // (D, H1)
  b1: T; // (H1)
  w2: T; // (H1, H2)
  b2: T; // (H2)
  w3: T; // (H2, K)
  b3: T; // (K)
}

export const PARAM_NAMES = ['w1', 'b1', 'w2', 'b2', 'w3', 'b3'] as const;
export type ParamName = (typeof PARAM_NAMES)[number];

export const PARAM_SHAPES: Record<ParamName, readonly number[]> = {
  w1: [D, H1],
  b1: [H1],
  w2: [H1, H2],
  b2: [H2],
  w3: [H2, K],
  b3: [K],
};

/** The TF.js weight each parameter corresponds to (layer names are fixed in pipeline/tfjs/model.ts). */
export const TFJS_WEIGHT_NAMES: Record<ParamName, string> = {
  w1: 'dense1/kernel',
  b1: 'dense1/bias',
  w2: 'dense2/kernel',
  b2: 'dense2/bias',
  w3: 'dense3/kernel',
  b3: 'dense3/bias',
};

export function paramSize(name: ParamName): number {
  return PARAM_SHAPES[name].reduce((a, b) => a * b, 1);
}

/** Float64 parameters of zeros, each tensor of its declared size. */
export function zeroParams(): Params<Float64Array> {
  const zeros = (name: ParamName) => new Float64Array(paramSize(name));
  return { w1: zeros('w1'), b1: zeros('b1'), w2: zeros('w2'), b2: zeros('b2'), w3: zeros('w3'), b3: zeros('b3') };
}

export function cloneParams<T extends FloatArray>(params: Params<T>): Params<T> {
  return {
    w1: params.w1.slice() as T,
    b1: params.b1.slice() as T,
    w2: params.w2.slice() as T,
    b2: params.b2.slice() as T,
    w3: params.w3.slice() as T,
    b3: params.b3.slice() as T,
  };
}
