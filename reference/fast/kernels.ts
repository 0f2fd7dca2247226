// The fast path's kernels, each tested against matmulNaive, the slow and obvious oracle
// kept in the readable core (reference/network.ts), by test/reference-fast.test.ts.
// B = batch, D = 784, H1 = 128, H2 = 64, K = 10. Row-major arrays, generic over
// Float32Array and Float64Array.
// Arithmetic is in JS numbers (float64); a float32 output is rounded each time a kernel
// stores into it, i.e. once per group of 4–8 products.
//
// Speed comes from exact tricks:
//   1. i-k-j loop order with register blocking (4 rows of b per pass, 8 in the sparse
//      kernel), so the inner loop streams contiguous rows and touches out once per group;
//   2. zero skipping: ~80% of MNIST pixels and ~half of all ReLU outputs are exactly 0,
//      so layers 1 and 2 read their inputs as lists of nonzeros (SparseRows), forward
//      and backward (dW1 only visits lit pixels);
//   3. branch-free ReLU and sparse indexing, whose branches no predictor can learn.

import { scalePixels, type FloatArray, type Pixels } from '../shapes.js';

interface TypedArrayConstructor<T> {
  new (length: number): T;
  new (buffer: SharedArrayBuffer): T;
  readonly BYTES_PER_ELEMENT: number;
}

/**
 * A new zeroed array of `length` entries of the same type as `like`; with shared, in
 * memory that worker threads can see too (a SharedArrayBuffer), else ordinary memory.
 */
export function arrayLike<T extends FloatArray>(like: T, length: number, shared = false): T {
  return allocate(like.constructor as TypedArrayConstructor<T>, length, shared);
}

function allocate<T>(type: TypedArrayConstructor<T>, length: number, shared: boolean): T {
  return shared ? new type(new SharedArrayBuffer(length * type.BYTES_PER_ELEMENT)) : new type(length);
}

/** Sets rows first..end−1 of out (·, n) to bias, or to 0 when bias is null. */
function fillRows(out: FloatArray, bias: FloatArray | null, end: number, n: number, first = 0): void {
  if (bias === null) {
    out.fill(0, first * n, end * n);
    return;
  }
  for (let r = first; r < end; r++) {
    const row = r * n;
    for (let j = 0; j < n; j++) out[row + j] = bias[j]!;
  }
}

/**
 * out (M, N) = a (M, P) · b (P, N) + bias (N), bias null meaning 0.
 * i-k-j order: each out row is built by streaming four rows of b at a time, so the
 * inner loop reads contiguous memory and loads/stores out once per four products.
 */
export function matmul(
  out: FloatArray,
  a: FloatArray,
  b: FloatArray,
  m: number,
  p: number,
  n: number,
  bias: FloatArray | null = null,
): void {
  fillRows(out, bias, m, n);
  const aStride = p; // a is (M, P)
  const bStride = n; // b is (P, N)
  for (let i = 0; i < m; i++) {
    const outRow = i * n;
    const aRow = i * aStride;
    let q = 0;
    for (; q + 3 < p; q += 4) {
      const a0 = a[aRow + q]!;
      const a1 = a[aRow + q + 1]!;
      const a2 = a[aRow + q + 2]!;
      const a3 = a[aRow + q + 3]!;
      const b0 = q * bStride;
      const b1 = b0 + bStride;
      const b2 = b1 + bStride;
      const b3 = b2 + bStride;
      for (let j = 0; j < n; j++) {
        out[outRow + j] = out[outRow + j]! + a0 * b[b0 + j]! + a1 * b[b1 + j]! + a2 * b[b2 + j]! + a3 * b[b3 + j]!;
      }
    }
    for (; q < p; q++) {
      const aq = a[aRow + q]!;
      const bq = q * bStride;
      for (let j = 0; j < n; j++) out[outRow + j] = out[outRow + j]! + aq * b[bq + j]!;
    }
  }
}

/**
 * out (M, N) = a (P, M)ᵀ · b (P, N): the weight gradient xᵀ·dOut.
 * Same i-k-j streaming as matmul; a is read down a column, four entries at a time.
 */
export function matmulTransA(out: FloatArray, a: FloatArray, b: FloatArray, m: number, p: number, n: number): void {
  // Deliberately unrolled twin of matmul (only a's indexing differs): each kernel keeps its own hot loop with constant strides.
  out.fill(0, 0, m * n);
  const aStride = m; // a is (P, M)
  const bStride = n; // b is (P, N)
  for (let i = 0; i < m; i++) {
    const outRow = i * n;
    let q = 0;
    for (; q + 3 < p; q += 4) {
      const a0 = a[q * aStride + i]!;
      const a1 = a[(q + 1) * aStride + i]!;
      const a2 = a[(q + 2) * aStride + i]!;
      const a3 = a[(q + 3) * aStride + i]!;
      const b0 = q * bStride;
      const b1 = b0 + bStride;
      const b2 = b1 + bStride;
      const b3 = b2 + bStride;
      for (let j = 0; j < n; j++) {
        out[outRow + j] = out[outRow + j]! + a0 * b[b0 + j]! + a1 * b[b1 + j]! + a2 * b[b2 + j]! + a3 * b[b3 + j]!;
      }
    }
    for (; q < p; q++) {
      const aq = a[q * aStride + i]!;
      const bq = q * bStride;
      for (let j = 0; j < n; j++) out[outRow + j] = out[outRow + j]! + aq * b[bq + j]!;
    }
  }
}

/**
 * out (M, N) = a (M, P) · b (N, P)ᵀ: the input gradient dOut·wᵀ.
 * Both operands are read along contiguous rows as dot products; four columns of
 * out share each load of a, and the four running sums stay in registers.
 */
export function matmulTransB(out: FloatArray, a: FloatArray, b: FloatArray, m: number, p: number, n: number): void {
  const aStride = p; // a is (M, P)
  const bStride = p; // b is (N, P)
  for (let i = 0; i < m; i++) {
    const aRow = i * aStride;
    const outRow = i * n;
    let j = 0;
    for (; j + 3 < n; j += 4) {
      const b0 = j * bStride;
      const b1 = b0 + bStride;
      const b2 = b1 + bStride;
      const b3 = b2 + bStride;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let q = 0; q < p; q++) {
        const aq = a[aRow + q]!;
        s0 += aq * b[b0 + q]!;
        s1 += aq * b[b1 + q]!;
        s2 += aq * b[b2 + q]!;
        s3 += aq * b[b3 + q]!;
      }
      out[outRow + j] = s0;
      out[outRow + j + 1] = s1;
      out[outRow + j + 2] = s2;
      out[outRow + j + 3] = s3;
    }
    for (; j < n; j++) {
      const bj = j * bStride;
      let s = 0;
      for (let q = 0; q < p; q++) s += a[aRow + q]! * b[bj + q]!;
      out[outRow + j] = s;
    }
  }
}

// ---------------------------------------------------------------------------
// Zero skipping. A matrix with many exact zeros is kept as its nonzeros, row by
// row (compressed sparse rows); multiplying then costs one pass per nonzero.
// Skipping a term 0·w changes no sum as long as w is finite, and a non-finite
// weight has already made the loss non-finite, which training reports.

/** The nonzeros of a (rows, cols) matrix: row r holds entries start[r] .. start[r+1]−1. */
export interface SparseRows<T extends FloatArray> {
  rows: number;
  start: Int32Array; // (maxRows + 1)
  column: Int32Array; // (capacity) column of each nonzero
  value: T; // (capacity) the nonzero itself
  cursor: Int32Array; // (maxRows) scratch for transposeSparse
}

/** Room for the nonzeros of any matrix up to (maxRows, capacity / maxRows); shared as in arrayLike. */
export function createSparseRows<T extends FloatArray>(like: T, maxRows: number, capacity: number, shared = false): SparseRows<T> {
  return {
    rows: 0,
    start: allocate(Int32Array, maxRows + 1, shared),
    column: allocate(Int32Array, capacity, shared),
    value: arrayLike(like, capacity, shared),
    cursor: allocate(Int32Array, maxRows, shared),
  };
}

/** Fills s with the nonzeros of m (rows, cols); returns how many there are. */
export function sparseRowsOf<T extends FloatArray>(s: SparseRows<T>, m: FloatArray, rows: number, cols: number): number {
  if (rows + 1 > s.start.length || rows * cols > s.column.length) {
    throw new Error(
      `sparseRowsOf: a (${rows}, ${cols}) matrix does not fit an index sized (${s.start.length - 1} rows, ${s.column.length} entries)`,
    );
  }
  return fillSparseRows(s, m, rows, cols);
}

/**
 * sparseRowsOf without the size check. Branch-free: every entry is written at the
 * next free slot, which only advances past a nonzero. A ReLU output is about half
 * zeros in no pattern a branch predictor can learn, and the branchy loop was 4×
 * slower (measured). Needs room for one slot past the last nonzero.
 */
function fillSparseRows<T extends FloatArray>(s: SparseRows<T>, m: FloatArray, rows: number, cols: number): number {
  const { start, column, value } = s;
  let e = 0;
  start[0] = 0;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = m[base + c]!;
      column[e] = c;
      value[e] = v;
      e += +(v !== 0);
    }
    start[r + 1] = e;
  }
  s.rows = rows;
  return e;
}

/** p / 255 for each byte p: the float the network sees for a pixel, exactly as scalePixels computes it. */
const PIXEL_VALUE = scalePixels(Uint8Array.from({ length: 256 }, (_, p) => p));

/**
 * Fills out with the nonzeros of rows order[first], …, order[first + count − 1] of a split's pixels
 * (N, cols), scaled as scalePixels scales them: a training batch read straight from the bytes, so
 * neither a float copy nor an index of the whole split is held (issue 24). Branch-free, as fillSparseRows.
 */
export function gatherPixelRows<T extends FloatArray>(
  out: SparseRows<T>,
  pixels: Pixels,
  order: ArrayLike<number>,
  first: number,
  count: number,
  cols: number,
): void {
  if (count + 1 > out.start.length || count * cols > out.column.length) {
    throw new Error(
      `gatherPixelRows: ${count} rows of ${cols} pixels do not fit an index sized (${out.start.length - 1} rows, ${out.column.length} entries)`,
    );
  }
  const { start, column, value } = out;
  let e = 0;
  start[0] = 0;
  for (let r = 0; r < count; r++) {
    const base = order[first + r]! * cols;
    for (let c = 0; c < cols; c++) {
      const p = pixels[base + c]!;
      column[e] = c;
      value[e] = PIXEL_VALUE[p]!;
      e += +(p !== 0);
    }
    start[r + 1] = e;
  }
  out.rows = count;
}

/** Fills out with the transpose of s, whose matrix has `cols` columns (a counting sort; rows stay in order). */
export function transposeSparse<T extends FloatArray>(out: SparseRows<T>, s: SparseRows<T>, cols: number): void {
  if (cols + 1 > out.start.length) {
    throw new Error(`transposeSparse: ${cols} rows do not fit an index sized for ${out.start.length - 1}`);
  }
  const entries = s.start[s.rows]!;
  const start = out.start;
  const cursor = out.cursor;
  start.fill(0, 0, cols + 1);
  for (let e = 0; e < entries; e++) start[s.column[e]! + 1]++;
  for (let c = 0; c < cols; c++) {
    start[c + 1] = start[c + 1]! + start[c]!;
    cursor[c] = start[c]!;
  }
  for (let r = 0; r < s.rows; r++) {
    for (let e = s.start[r]!; e < s.start[r + 1]!; e++) {
      const to = cursor[s.column[e]!]++;
      out.column[to] = r;
      out.value[to] = s.value[e]!;
    }
  }
  out.rows = cols;
}

/**
 * out (R, N) = S (R, P) · b (P, N) + bias (N), S given as its nonzeros, bias null meaning 0.
 * As in matmul, several nonzeros are folded per pass over an out row: eight at a time
 * (measured ~25% faster than four on a 157-nonzero MNIST row; twelve gains nothing),
 * then four, then the last one to three, which short rows — a pixel lit in a dozen
 * images of the batch — leave often. The rows of b they pick are wherever the nonzeros fall.
 * With first/end only rows first..end−1 of out are computed, each exactly as in the
 * whole product: that is how threads share a layer (reference/fast/threads.ts) without
 * changing a bit.
 */
export function sparseMatmul(
  out: FloatArray,
  s: SparseRows<FloatArray>,
  b: FloatArray,
  n: number,
  bias: FloatArray | null = null,
  first = 0,
  end = s.rows,
): void {
  fillRows(out, bias, end, n, first);
  const { start, column, value } = s;
  const bStride = n; // b is (P, N)
  for (let r = first; r < end; r++) {
    const o = r * n;
    const rowEnd = start[r + 1]!;
    let e = start[r]!;
    for (; e + 7 < rowEnd; e += 8) {
      const v0 = value[e]!;
      const v1 = value[e + 1]!;
      const v2 = value[e + 2]!;
      const v3 = value[e + 3]!;
      const v4 = value[e + 4]!;
      const v5 = value[e + 5]!;
      const v6 = value[e + 6]!;
      const v7 = value[e + 7]!;
      const b0 = column[e]! * bStride;
      const b1 = column[e + 1]! * bStride;
      const b2 = column[e + 2]! * bStride;
      const b3 = column[e + 3]! * bStride;
      const b4 = column[e + 4]! * bStride;
      const b5 = column[e + 5]! * bStride;
      const b6 = column[e + 6]! * bStride;
      const b7 = column[e + 7]! * bStride;
      for (let j = 0; j < n; j++) {
        out[o + j] =
          out[o + j]! +
          v0 * b[b0 + j]! +
          v1 * b[b1 + j]! +
          v2 * b[b2 + j]! +
          v3 * b[b3 + j]! +
          v4 * b[b4 + j]! +
          v5 * b[b5 + j]! +
          v6 * b[b6 + j]! +
          v7 * b[b7 + j]!;
      }
    }
    if (e + 3 < rowEnd) {
      const v0 = value[e]!;
      const v1 = value[e + 1]!;
      const v2 = value[e + 2]!;
      const v3 = value[e + 3]!;
      const b0 = column[e]! * bStride;
      const b1 = column[e + 1]! * bStride;
      const b2 = column[e + 2]! * bStride;
      const b3 = column[e + 3]! * bStride;
      for (let j = 0; j < n; j++) out[o + j] = out[o + j]! + v0 * b[b0 + j]! + v1 * b[b1 + j]! + v2 * b[b2 + j]! + v3 * b[b3 + j]!;
      e += 4;
    }
    const left = rowEnd - e;
    if (left === 3) {
      const v0 = value[e]!;
      const v1 = value[e + 1]!;
      const v2 = value[e + 2]!;
      const b0 = column[e]! * bStride;
      const b1 = column[e + 1]! * bStride;
      const b2 = column[e + 2]! * bStride;
      for (let j = 0; j < n; j++) out[o + j] = out[o + j]! + v0 * b[b0 + j]! + v1 * b[b1 + j]! + v2 * b[b2 + j]!;
    } else if (left === 2) {
      const v0 = value[e]!;
      const v1 = value[e + 1]!;
      const b0 = column[e]! * bStride;
      const b1 = column[e + 1]! * bStride;
      for (let j = 0; j < n; j++) out[o + j] = out[o + j]! + v0 * b[b0 + j]! + v1 * b[b1 + j]!;
    } else if (left === 1) {
      const v0 = value[e]!;
      const b0 = column[e]! * bStride;
      for (let j = 0; j < n; j++) out[o + j] = out[o + j]! + v0 * b[b0 + j]!;
    }
  }
}

/**
 * dZ (B, IN) = (dOut · wᵀ) ⊙ [z > 0]: a dense layer's input gradient followed by the
 * backward of the ReLU that produced its input, fused so that only units the ReLU let
 * through are computed (about half). active lists, per image, the units with z > 0
 * (the nonzeros of ReLU(z)); dOut (B, OUT) comes as its nonzeros dOutRows; w is (IN, OUT).
 * Each entry is a dot product over dOut's nonzeros; four units share each load of dOut.
 */
export function reluDenseBackwardInput(
  dZ: FloatArray,
  dOutRows: SparseRows<FloatArray>,
  w: FloatArray,
  active: SparseRows<FloatArray>,
  inDim: number,
  outDim: number,
): void {
  const rows = dOutRows.rows;
  dZ.fill(0, 0, rows * inDim);
  const { start, column, value } = dOutRows;
  const unit = active.column;
  const wStride = outDim; // w is (IN, OUT)
  for (let r = 0; r < rows; r++) {
    const dZRow = r * inDim;
    const first = start[r]!;
    const end = start[r + 1]!;
    const activeEnd = active.start[r + 1]!;
    let a = active.start[r]!;
    for (; a + 3 < activeEnd; a += 4) {
      const k0 = unit[a]!;
      const k1 = unit[a + 1]!;
      const k2 = unit[a + 2]!;
      const k3 = unit[a + 3]!;
      const w0 = k0 * wStride;
      const w1 = k1 * wStride;
      const w2 = k2 * wStride;
      const w3 = k3 * wStride;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let e = first; e < end; e++) {
        const j = column[e]!;
        const g = value[e]!;
        s0 += g * w[w0 + j]!;
        s1 += g * w[w1 + j]!;
        s2 += g * w[w2 + j]!;
        s3 += g * w[w3 + j]!;
      }
      dZ[dZRow + k0] = s0;
      dZ[dZRow + k1] = s1;
      dZ[dZRow + k2] = s2;
      dZ[dZRow + k3] = s3;
    }
    for (; a < activeEnd; a++) {
      const k = unit[a]!;
      const wk = k * wStride;
      let sum = 0;
      for (let e = first; e < end; e++) sum += value[e]! * w[wk + column[e]!]!;
      dZ[dZRow + k] = sum;
    }
  }
}

/** db (N) = Σ over rows of dOut (rows, N). */
export function sumRows(db: FloatArray, dOut: FloatArray, rows: number, n: number): void {
  for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += dOut[r * n + j]!;
    db[j] = sum;
  }
}

// The ReLU pair multiplies by the 0/1 gate [z > 0] instead of branching on it, unlike
// the core's: the signs of z follow no pattern a branch predictor can learn, and the
// branchy loops were ~7× slower (measured). For finite values the result is the same
// (a −0 is 0); a non-finite value is not masked to 0 but spreads NaN, which training reports.

/** a = z·[z > 0], elementwise over n entries: reluForward without a branch. */
export function reluGate(a: FloatArray, z: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = z[i]!;
    a[i] = v * +(v > 0);
  }
}

/** dZ = dA·[z > 0]: reluBackward without a branch. dZ may be dA. */
export function reluGateBackward(dZ: FloatArray, dA: FloatArray, z: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) dZ[i] = dA[i]! * +(z[i]! > 0);
}
