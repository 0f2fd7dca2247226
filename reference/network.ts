// The network as plain math on row-major typed arrays:
//   x (B, D) → dense1 → z1 (B, H1) → ReLU → a1 → dense2 → z2 (B, H2) → ReLU → a2
//            → dense3 → logits (B, K) → softmax → probs → cross-entropy with y → loss
// B = batch (≤ ws.maxBatch), D = 784, H1 = 128, H2 = 64, K = 10, N = images in a split.
//
// Each operation's backward sits beside its forward (denseForward / denseBackward, …).
// Every function is generic over Float32Array (training) and Float64Array (gradient
// checks). Arithmetic is in JS numbers (float64); a float32 output is rounded each
// time a kernel stores into it, i.e. once per group of 4–8 products.
//
// Speed comes from three exact tricks, each tested against matmulNaive, the oracle:
//   1. i-k-j loop order with register blocking (4 rows of b per pass, 8 in the sparse
//      kernel), so the inner loop streams contiguous rows and touches out once per group;
//   2. zero skipping: ~80% of MNIST pixels and ~half of all ReLU outputs are exactly 0,
//      so layers 1 and 2 read their inputs as lists of nonzeros (SparseRows), forward
//      and backward (dW1 only visits lit pixels);
//   3. one Workspace allocated up front, so a training step allocates no buffers.

import { D, H1, H2, K, type FloatArray, type Params } from './shapes.js';

interface TypedArrayConstructor<T> {
  new (length: number): T;
  new (buffer: SharedArrayBuffer): T;
  readonly BYTES_PER_ELEMENT: number;
}

/**
 * A new zeroed array of `length` entries of the same type as `like`; with shared, in
 * memory that worker threads can see too (a SharedArrayBuffer), else ordinary memory.
 */
function arrayLike<T extends FloatArray>(like: T, length: number, shared = false): T {
  return allocate(like.constructor as TypedArrayConstructor<T>, length, shared);
}

function allocate<T>(type: TypedArrayConstructor<T>, length: number, shared: boolean): T {
  return shared ? new type(new SharedArrayBuffer(length * type.BYTES_PER_ELEMENT)) : new type(length);
}

// ---------------------------------------------------------------------------
// Matrix multiply: the naive oracle and the fast kernels it checks.

/** How matmulNaive reads its operands: 'nn' = a·b, 'tn' = aᵀ·b, 'nt' = a·bᵀ. */
export type MatmulLayout = 'nn' | 'tn' | 'nt';

/**
 * out (M, N) = op(a) · op(b) with inner dimension P, the textbook triple loop.
 * a is (M, P) for 'nn'/'nt' and (P, M) for 'tn'; b is (P, N) for 'nn'/'tn' and (N, P) for 'nt'.
 * Kept slow and obvious on purpose: it is the oracle every fast kernel is tested against.
 */
export function matmulNaive(
  out: FloatArray,
  a: FloatArray,
  b: FloatArray,
  m: number,
  p: number,
  n: number,
  layout: MatmulLayout = 'nn',
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let q = 0; q < p; q++) {
        const aiq = layout === 'tn' ? a[q * m + i]! : a[i * p + q]!;
        const bqj = layout === 'nt' ? b[j * p + q]! : b[q * n + j]!;
        sum += aiq * bqj;
      }
      out[i * n + j] = sum;
    }
  }
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
    throw new Error(`sparseRowsOf: a (${rows}, ${cols}) matrix does not fit an index sized (${s.start.length - 1} rows, ${s.column.length} entries)`);
  }
  return fillSparseRows(s, m, rows, cols);
}

/** A new index holding the nonzeros of m (rows, cols), e.g. a whole split's images, indexed once. */
export function sparseRowsFrom<T extends FloatArray>(m: T, rows: number, cols: number): SparseRows<T> {
  let nonzeros = 0;
  for (let i = 0; i < rows * cols; i++) if (m[i] !== 0) nonzeros++;
  const s = createSparseRows(m, rows, nonzeros + 1); // + 1: fillSparseRows writes one slot past the last nonzero
  fillSparseRows(s, m, rows, cols);
  return s;
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

/**
 * Fills out with rows order[first], …, order[first + count − 1] of the indexed matrix
 * source: a training batch gathered straight from the split's nonzeros, so the dense
 * images are neither copied nor rescanned. out needs room for count full rows.
 */
export function gatherSparseRows<T extends FloatArray>(
  out: SparseRows<T>,
  source: SparseRows<FloatArray>,
  order: ArrayLike<number>,
  first: number,
  count: number,
): void {
  if (count + 1 > out.start.length) throw new Error(`gatherSparseRows: ${count} rows do not fit an index sized for ${out.start.length - 1}`);
  const { start, column, value } = out;
  let e = 0;
  start[0] = 0;
  for (let r = 0; r < count; r++) {
    const row = order[first + r]!;
    const end = source.start[row + 1]!;
    if (e + end - source.start[row]! > column.length) throw new Error(`gatherSparseRows: the batch has more nonzeros than the ${column.length} the index holds`);
    for (let i = source.start[row]!; i < end; i++) {
      column[e] = source.column[i]!;
      value[e] = source.value[i]!;
      e++;
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
 * whole product: that is how threads share a layer (reference/threads.ts) without
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
          v0 * b[b0 + j]! + v1 * b[b1 + j]! + v2 * b[b2 + j]! + v3 * b[b3 + j]! +
          v4 * b[b4 + j]! + v5 * b[b5 + j]! + v6 * b[b6 + j]! + v7 * b[b7 + j]!;
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
function sumRows(db: FloatArray, dOut: FloatArray, rows: number, n: number): void {
  for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += dOut[r * n + j]!;
    db[j] = sum;
  }
}

// ---------------------------------------------------------------------------
// The layers, forward beside backward.

/** out (B, OUT) = x (B, IN) · w (IN, OUT) + b (OUT). */
export function denseForward(
  out: FloatArray,
  x: FloatArray,
  w: FloatArray,
  b: FloatArray,
  batch: number,
  inDim: number,
  outDim: number,
): void {
  matmul(out, x, w, batch, inDim, outDim, b);
}

/**
 * Given dOut = ∂L/∂out (B, OUT): dW (IN, OUT) = xᵀ·dOut, db (OUT) = Σ_rows dOut,
 * dX (B, IN) = dOut·wᵀ. dX is null for a first layer, whose input needs no gradient.
 */
export function denseBackward(
  dX: FloatArray | null,
  dW: FloatArray,
  db: FloatArray,
  dOut: FloatArray,
  x: FloatArray,
  w: FloatArray,
  batch: number,
  inDim: number,
  outDim: number,
): void {
  matmulTransA(dW, x, dOut, inDim, batch, outDim);
  sumRows(db, dOut, batch, outDim);
  if (dX !== null) matmulTransB(dX, dOut, w, batch, outDim, inDim);
}

/** denseForward for an input given as its nonzeros xRows (B rows of IN): out (B, OUT) = x·w + b. */
export function sparseDenseForward(
  out: FloatArray,
  xRows: SparseRows<FloatArray>,
  w: FloatArray,
  b: FloatArray,
  outDim: number,
  first = 0, // with end: only images first..end−1, as in sparseMatmul
  end = xRows.rows,
): void {
  sparseMatmul(out, xRows, w, outDim, b, first, end);
}

/**
 * denseBackward's dW and db for an input given as its nonzeros. xCols is xᵀ (IN rows
 * of B), so dW (IN, OUT) = xᵀ·dOut skips zero inputs too: a pixel dark in the whole
 * batch costs only the zeroing of its row. The input gradient, when one is needed,
 * is reluDenseBackwardInput's.
 */
export function sparseDenseBackward(
  dW: FloatArray,
  db: FloatArray,
  dOut: FloatArray,
  xCols: SparseRows<FloatArray>,
  batch: number,
  outDim: number,
): void {
  sparseMatmul(dW, xCols, dOut, outDim);
  sumRows(db, dOut, batch, outDim);
}

// The ReLU pair multiplies by the 0/1 gate [z > 0] instead of branching on it: the
// signs of z follow no pattern a branch predictor can learn, and the branchy loops
// were ~7× slower (measured). For finite values the result is the same (a −0 is 0);
// a non-finite value is not masked to 0 but spreads NaN, which training reports.

/** a = max(z, 0), elementwise over n entries. */
export function reluForward(a: FloatArray, z: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const v = z[i]!;
    a[i] = v * +(v > 0);
  }
}

/** dZ = dA where z > 0, else 0 (the kink at 0 gets slope 0, as TF.js does). dZ may be dA. */
export function reluBackward(dZ: FloatArray, dA: FloatArray, z: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) dZ[i] = dA[i]! * +(z[i]! > 0);
}

/**
 * probs (B, K) = softmax(logits); returns the mean over rows of −Σ_k y log p.
 * log p is taken as z − logsumexp(z) with the row max subtracted first, so that
 * neither exp overflows nor log sees a 0; y may be any distribution, not just one-hot.
 */
export function softmaxCrossEntropyForward(
  probs: FloatArray,
  logits: FloatArray,
  oneHot: FloatArray,
  batch: number,
  classes: number,
): number {
  let total = 0;
  for (let r = 0; r < batch; r++) {
    const row = r * classes;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[row + k]!);
    let sumExp = 0;
    for (let k = 0; k < classes; k++) sumExp += Math.exp(logits[row + k]! - max);
    const logSumExp = max + Math.log(sumExp);
    for (let k = 0; k < classes; k++) {
      const logP = logits[row + k]! - logSumExp;
      probs[row + k] = Math.exp(logP);
      const y = oneHot[row + k]!;
      if (y !== 0) total -= y * logP;
    }
  }
  return total / batch;
}

/** dLogits (B, K) = (p − y) / B: the gradient of the mean cross-entropy through the softmax (derived in docs/backprop.md). */
export function softmaxCrossEntropyBackward(
  dLogits: FloatArray,
  probs: FloatArray,
  oneHot: FloatArray,
  batch: number,
  classes: number,
): void {
  const n = batch * classes;
  for (let i = 0; i < n; i++) dLogits[i] = (probs[i]! - oneHot[i]!) / batch;
}

/** param −= lr · grad over n entries: plain SGD, as tf.train.sgd applies it. */
export function sgdUpdate(param: FloatArray, grad: FloatArray, lr: number, n: number): void {
  sgdUpdateRange(param, grad, lr, 0, n);
}

/** sgdUpdate of entries first..end−1 only. */
export function sgdUpdateRange(param: FloatArray, grad: FloatArray, lr: number, first: number, end: number): void {
  for (let i = first; i < end; i++) param[i] = param[i]! - lr * grad[i]!;
}

/** The index of the largest entry of each row (the first one on ties), like tf.argMax. */
export function argmaxRows(out: Uint8Array, m: FloatArray, rows: number, cols: number, offset = 0): void {
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    let best = 0;
    for (let c = 1; c < cols; c++) if (m[row + c]! > m[row + best]!) best = c;
    out[offset + r] = best;
  }
}

/** How many rows of logits (B, K) have their largest entry where oneHot (B, K) has its. */
export function countCorrect(logits: FloatArray, oneHot: FloatArray, batch: number, classes: number): number {
  let correct = 0;
  for (let r = 0; r < batch; r++) {
    const row = r * classes;
    let predicted = 0;
    let label = 0;
    for (let c = 1; c < classes; c++) {
      if (logits[row + c]! > logits[row + predicted]!) predicted = c;
      if (oneHot[row + c]! > oneHot[row + label]!) label = c;
    }
    if (predicted === label) correct++;
  }
  return correct;
}

// ---------------------------------------------------------------------------
// The whole network.

/** Every buffer one forward + backward needs, for batches of up to maxBatch images. */
export interface Workspace<T extends FloatArray> {
  maxBatch: number;
  z1: T; // (B, H1) layer-1 pre-activation
  a1: T; // (B, H1) ReLU(z1)
  z2: T; // (B, H2)
  a2: T; // (B, H2)
  logits: T; // (B, K)
  probs: T; // (B, K) softmax(logits)
  dLogits: T; // (B, K) ∂L/∂logits
  dZ2: T; // (B, H2) ∂L/∂a2, then ∂L/∂z2 in place
  dZ1: T; // (B, H1) ∂L/∂a1, then ∂L/∂z1 in place
  grads: Params<T>; // ∂L/∂θ, same shapes as the params
  xRows: SparseRows<T>; // nonzero pixels of x (B, D), by image
  xCols: SparseRows<T>; // the same, by pixel: xᵀ (D, B)
  a1Rows: SparseRows<T>; // nonzeros of a1 (B, H1)
  a1Cols: SparseRows<T>; // a1ᵀ (H1, B)
  dZ2Rows: SparseRows<T>; // nonzeros of dZ2 (B, H2)
}

/**
 * Allocates a workspace whose buffers have the params' float type; with shared, in
 * memory worker threads can see (reference/threads.ts).
 */
export function createWorkspace<T extends FloatArray>(params: Params<T>, maxBatch: number, shared = false): Workspace<T> {
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new Error(`createWorkspace: maxBatch must be a positive integer, found ${maxBatch}`);
  const like = params.w1;
  const make = (n: number): T => arrayLike(like, n, shared);
  const batch = maxBatch;
  return {
    maxBatch,
    z1: make(batch * H1),
    a1: make(batch * H1),
    z2: make(batch * H2),
    a2: make(batch * H2),
    logits: make(batch * K),
    probs: make(batch * K),
    dLogits: make(batch * K),
    dZ2: make(batch * H2),
    dZ1: make(batch * H1),
    grads: {
      w1: make(D * H1),
      b1: make(H1),
      w2: make(H1 * H2),
      b2: make(H2),
      w3: make(H2 * K),
      b3: make(K),
    },
    xRows: createSparseRows(like, batch, batch * D, shared),
    xCols: createSparseRows(like, D, batch * D, shared),
    a1Rows: createSparseRows(like, batch, batch * H1, shared),
    a1Cols: createSparseRows(like, H1, batch * H1, shared),
    dZ2Rows: createSparseRows(like, batch, batch * H2, shared),
  };
}

function checkBatch(batch: number, ws: Workspace<FloatArray>, caller: string): void {
  if (!Number.isInteger(batch) || batch < 1 || batch > ws.maxBatch) {
    throw new Error(`${caller}: batch must be an integer in 1..${ws.maxBatch} (the workspace's maxBatch), found ${batch}`);
  }
}

/** Where forward leaves its results: views of the workspace, valid for the first `batch` rows until the next call. */
export interface ForwardResult<T extends FloatArray> {
  logits: T; // (maxBatch, K) ws.logits
  probs: T; // (maxBatch, K) ws.probs
  loss: number; // mean cross-entropy over the batch; NaN when no labels were given
}

/**
 * Runs x (B, D) through the network into ws; with oneHot (B, K) also the loss.
 * backward reads what this leaves in ws, so call it on the same batch right after.
 */
export function forward<T extends FloatArray>(
  params: Params<T>,
  x: FloatArray,
  batch: number,
  ws: Workspace<T>,
  oneHot?: FloatArray,
): ForwardResult<T> {
  checkBatch(batch, ws, 'forward');
  sparseRowsOf(ws.xRows, x, batch, D);
  return forwardRows(params, batch, ws, oneHot);
}

/** forward for a batch whose pixels are already in ws.xRows (see gatherSparseRows). */
export function forwardRows<T extends FloatArray>(
  params: Params<T>,
  batch: number,
  ws: Workspace<T>,
  oneHot?: FloatArray,
): ForwardResult<T> {
  checkBatch(batch, ws, 'forward');
  if (ws.xRows.rows !== batch) throw new Error(`forwardRows: ws.xRows holds ${ws.xRows.rows} images, expected the batch of ${batch}`);
  layer1Forward(params, ws);
  layer1Activation(batch, ws);
  layer2Forward(params, ws);
  return forwardAfterLayer2(params, batch, ws, oneHot);
}

/**
 * z1 = x·w1 + b1, x being ws.xRows, for images first..end−1 (all by default).
 * Threads that share layer 1 each take a run of images (reference/threads.ts).
 */
export function layer1Forward<T extends FloatArray>(params: Params<T>, ws: Workspace<T>, first = 0, end = ws.xRows.rows): void {
  sparseDenseForward(ws.z1, ws.xRows, params.w1, params.b1, H1, first, end);
}

/** a1 = ReLU(z1), also kept as its nonzeros in ws.a1Rows for layer 2. */
export function layer1Activation<T extends FloatArray>(batch: number, ws: Workspace<T>): void {
  reluForward(ws.a1, ws.z1, batch * H1);
  sparseRowsOf(ws.a1Rows, ws.a1, batch, H1);
}

/** z2 = a1·w2 + b2, a1 being ws.a1Rows, for images first..end−1 (all by default); threads split it so. */
export function layer2Forward<T extends FloatArray>(params: Params<T>, ws: Workspace<T>, first = 0, end = ws.a1Rows.rows): void {
  sparseDenseForward(ws.z2, ws.a1Rows, params.w2, params.b2, H2, first, end);
}

/** The rest of forward once ws.z2 holds layer 2's output: ReLU 2, layer 3, softmax and the loss. */
export function forwardAfterLayer2<T extends FloatArray>(
  params: Params<T>,
  batch: number,
  ws: Workspace<T>,
  oneHot?: FloatArray,
): ForwardResult<T> {
  reluForward(ws.a2, ws.z2, batch * H2);
  denseForward(ws.logits, ws.a2, params.w3, params.b3, batch, H2, K);
  let loss = NaN;
  if (oneHot !== undefined) loss = softmaxCrossEntropyForward(ws.probs, ws.logits, oneHot, batch, K);
  else softmaxForward(ws.probs, ws.logits, batch, K);
  return { logits: ws.logits, probs: ws.probs, loss };
}

/** probs = softmax(logits) without a loss, for prediction. */
function softmaxForward(probs: FloatArray, logits: FloatArray, batch: number, classes: number): void {
  for (let r = 0; r < batch; r++) {
    const row = r * classes;
    let max = -Infinity;
    for (let k = 0; k < classes; k++) max = Math.max(max, logits[row + k]!);
    let sumExp = 0;
    for (let k = 0; k < classes; k++) sumExp += Math.exp(logits[row + k]! - max);
    for (let k = 0; k < classes; k++) probs[row + k] = Math.exp(logits[row + k]! - max) / sumExp;
  }
}

/**
 * ∂L/∂θ for the batch forward just ran on, into ws.grads (returned).
 * The chain rule from the loss back to x, one layer pair at a time.
 */
export function backward<T extends FloatArray>(
  params: Params<T>,
  oneHot: FloatArray,
  batch: number,
  ws: Workspace<T>,
): Params<T> {
  checkBatch(batch, ws, 'backward');
  backwardToLayer1(params, oneHot, batch, ws);
  transposeSparse(ws.xCols, ws.xRows, D);
  layer1Backward(ws, batch);
  return ws.grads;
}

/** backward from the loss down to ws.dZ1 = ∂L/∂z1: every gradient but layer 1's. */
export function backwardToLayer1<T extends FloatArray>(
  params: Params<T>,
  oneHot: FloatArray,
  batch: number,
  ws: Workspace<T>,
): void {
  backwardToZ2(params, oneHot, batch, ws);
  layer2WeightGradient(ws, batch);
  layer2InputGradient(params, batch, ws);
}

/** backward from the loss down to ws.dZ2 = ∂L/∂z2, with layer 3's gradients. */
export function backwardToZ2<T extends FloatArray>(params: Params<T>, oneHot: FloatArray, batch: number, ws: Workspace<T>): void {
  softmaxCrossEntropyBackward(ws.dLogits, ws.probs, oneHot, batch, K);
  denseBackward(ws.dZ2, ws.grads.w3, ws.grads.b3, ws.dLogits, ws.a2, params.w3, batch, H2, K);
  reluBackward(ws.dZ2, ws.dZ2, ws.z2, batch * H2);
}

/** Layer 2's dW2 = a1ᵀ·dZ2 and db2 = Σ dZ2, from ws.a1Rows and ws.dZ2. */
export function layer2WeightGradient<T extends FloatArray>(ws: Workspace<T>, batch: number): void {
  transposeSparse(ws.a1Cols, ws.a1Rows, H1);
  sparseDenseBackward(ws.grads.w2, ws.grads.b2, ws.dZ2, ws.a1Cols, batch, H2);
}

/** dZ1 = (dZ2·w2ᵀ) ⊙ [z1 > 0]: back through layer 2 and ReLU 1, from ws.dZ2 and ws.a1Rows. */
export function layer2InputGradient<T extends FloatArray>(params: Params<T>, batch: number, ws: Workspace<T>): void {
  sparseRowsOf(ws.dZ2Rows, ws.dZ2, batch, H2);
  reluDenseBackwardInput(ws.dZ1, ws.dZ2Rows, params.w2, ws.a1Rows, H1, H2);
}

/**
 * Layer 1's gradients: dW1 = xᵀ·dZ1 over the lit pixels only, db1 = Σ dZ1; x needs
 * no gradient. Reads ws.xCols, which must hold xᵀ.
 */
export function layer1Backward<T extends FloatArray>(ws: Workspace<T>, batch: number): void {
  sparseDenseBackward(ws.grads.w1, ws.grads.b1, ws.dZ1, ws.xCols, batch, H1);
}

/**
 * Rows first..end−1 of dW1 = xᵀ·dZ1 (the weights of pixels first..end−1), each exactly as
 * layer1Backward computes it. Threads that share layer 1 each take a run of pixels.
 */
export function layer1WeightGradient<T extends FloatArray>(ws: Workspace<T>, first: number, end: number): void {
  sparseMatmul(ws.grads.w1, ws.xCols, ws.dZ1, H1, null, first, end);
}

/** db1 = Σ over the batch's rows of dZ1, as layer1Backward computes it. */
export function layer1BiasGradient<T extends FloatArray>(ws: Workspace<T>, batch: number): void {
  sumRows(ws.grads.b1, ws.dZ1, batch, H1);
}

/** The result of one SGD step. */
export interface StepResult {
  loss: number; // mean cross-entropy of the batch, before the update
  correct: number; // images of the batch classified right, before the update
}

/** One SGD step on x (B, D), oneHot (B, K): forward, backward, θ −= lr·∂L/∂θ. Allocates no buffers. */
export function trainStep<T extends FloatArray>(
  params: Params<T>,
  x: FloatArray,
  oneHot: FloatArray,
  batch: number,
  lr: number,
  ws: Workspace<T>,
): StepResult {
  checkBatch(batch, ws, 'trainStep');
  sparseRowsOf(ws.xRows, x, batch, D);
  return trainStepRows(params, oneHot, batch, lr, ws);
}

/** trainStep for a batch whose pixels are already in ws.xRows (see gatherSparseRows). */
export function trainStepRows<T extends FloatArray>(
  params: Params<T>,
  oneHot: FloatArray,
  batch: number,
  lr: number,
  ws: Workspace<T>,
): StepResult {
  const { loss } = forwardRows(params, batch, ws, oneHot);
  const correct = countCorrect(ws.logits, oneHot, batch, K);
  const grads = backward(params, oneHot, batch, ws);
  sgdUpdateW1(params, grads, lr);
  sgdUpdateAllButW1(params, grads, lr);
  return { loss, correct };
}

/** w1 −= lr·dW1 for the weights of pixels first..end−1 (rows of w1), all by default. */
export function sgdUpdateW1<T extends FloatArray>(params: Params<T>, grads: Params<T>, lr: number, first = 0, end = D): void {
  sgdUpdateRange(params.w1, grads.w1, lr, first * H1, end * H1);
}

/** θ −= lr·∂L/∂θ for every parameter but w1. */
export function sgdUpdateAllButW1<T extends FloatArray>(params: Params<T>, grads: Params<T>, lr: number): void {
  sgdUpdate(params.b1, grads.b1, lr, H1);
  sgdUpdate(params.w2, grads.w2, lr, H1 * H2);
  sgdUpdate(params.b2, grads.b2, lr, H2);
  sgdUpdate(params.w3, grads.w3, lr, H2 * K);
  sgdUpdate(params.b3, grads.b3, lr, K);
}

// ---------------------------------------------------------------------------
// Whole splits, in chunks of the workspace's batch size.

const CHUNK = 256; // rows per forward pass when walking a whole split

function checkSplit(images: FloatArray, count: number, caller: string): void {
  if (!Number.isInteger(count) || count < 0 || images.length < count * D) {
    throw new Error(`${caller}: expected images (${count}, ${D}) = ${count * D} values, found ${images.length}`);
  }
}

/** Predicted digit (N) and class probabilities (N, K) for images (N, D). */
export function predict<T extends FloatArray>(
  params: Params<T>,
  images: FloatArray,
  count: number,
): { predictions: Uint8Array; probs: T } {
  checkSplit(images, count, 'predict');
  const ws = createWorkspace(params, CHUNK);
  const predictions = new Uint8Array(count); // (N)
  const probs = arrayLike(params.w1, count * K); // (N, K)
  for (let start = 0; start < count; start += CHUNK) {
    const batch = Math.min(CHUNK, count - start);
    forward(params, images.subarray(start * D, (start + batch) * D), batch, ws);
    argmaxRows(predictions, ws.logits, batch, K, start);
    probs.set(ws.probs.subarray(0, batch * K), start * K);
  }
  return { predictions, probs };
}

/** The hidden layers' ReLU outputs for images (N, D): a1 (N, H1) and a2 (N, H2). */
export function hiddenActivations<T extends FloatArray>(
  params: Params<T>,
  images: FloatArray,
  count: number,
): { a1: T; a2: T } {
  checkSplit(images, count, 'hiddenActivations');
  const ws = createWorkspace(params, CHUNK);
  const a1 = arrayLike(params.w1, count * H1); // (N, H1)
  const a2 = arrayLike(params.w1, count * H2); // (N, H2)
  for (let start = 0; start < count; start += CHUNK) {
    const batch = Math.min(CHUNK, count - start);
    forward(params, images.subarray(start * D, (start + batch) * D), batch, ws);
    a1.set(ws.a1.subarray(0, batch * H1), start * H1);
    a2.set(ws.a2.subarray(0, batch * H2), start * H2);
  }
  return { a1, a2 };
}

/** Loss, accuracy and predictions of the network on a whole split. */
export interface SplitEvaluation {
  loss: number; // mean cross-entropy over the N images
  accuracy: number; // fraction of the N images classified right
  predictions: Uint8Array; // (N) predicted digit
}

/** Mean cross-entropy, accuracy and predictions on images (N, D) with labels oneHot (N, K). */
export function evaluate<T extends FloatArray>(
  params: Params<T>,
  images: FloatArray,
  oneHot: FloatArray,
  count: number,
  ws: Workspace<T> = createWorkspace(params, CHUNK),
): SplitEvaluation {
  checkSplit(images, count, 'evaluate');
  if (oneHot.length < count * K) throw new Error(`evaluate: expected oneHot (${count}, ${K}) = ${count * K} values, found ${oneHot.length}`);
  if (count === 0) throw new Error('evaluate: the split is empty');
  const predictions = new Uint8Array(count); // (N)
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < count; start += ws.maxBatch) {
    const batch = Math.min(ws.maxBatch, count - start);
    const labels = oneHot.subarray(start * K, (start + batch) * K);
    const { loss } = forward(params, images.subarray(start * D, (start + batch) * D), batch, ws, labels);
    lossSum += loss * batch;
    correct += countCorrect(ws.logits, labels, batch, K);
    argmaxRows(predictions, ws.logits, batch, K, start);
  }
  return { loss: lossSum / count, accuracy: correct / count, predictions };
}
