// An attempt, kept as a record: TF.js's multi-threaded wasm build in Node, which TF.js
// turns off there (tfjs issue 3830). Result on Node 20.20 with @tensorflow/tfjs-backend-wasm
// 4.22: with the three work-arounds below the threaded SIMD module loads and the backend
// starts, but XNNPACK reports a pool of 1 thread and no pthread ever runs, so matmuls take
// as long as on the single-threaded build. The pipeline does not use any of this.
//
//   npx tsx bench/wasm-threads-attempt.ts [threads]     (threads 0 = the ordinary build)
//
// The work-arounds:
//   1. the WASM_HAS_MULTITHREAD_SUPPORT flag, false in Node, is forced on;
//   2. Node's worker_threads take no blob: URLs, and the backend hands Emscripten its
//      worker script and main script as Blobs: each Blob's text is kept and
//      URL.createObjectURL writes it to a temporary file instead;
//   3. the main script is the factory's source text, which refers to names of the bundle
//      around it (require$$0 … and commonjsGlobal): they are defined in front of it.

import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dir = mkdtempSync(path.join(os.tmpdir(), 'wasm-threads-'));
const mainScript = path.join(dir, 'main-script.js');
const bundleNames =
  'var require$$0 = require("fs"), require$$1 = require("path"), require$$3 = require("perf_hooks"), require$$4 = require("os"), commonjsGlobal = globalThis;\n';

class TextBlob extends Blob {
  readonly content: string;
  constructor(...[parts, options]: ConstructorParameters<typeof Blob>) {
    super(parts, options);
    this.content = (parts ?? []).map(String).join('');
    if (this.content.startsWith('var WasmBackendModuleThreadedSimd')) writeFileSync(mainScript, bundleNames + this.content);
  }
}
globalThis.Blob = TextBlob;
let files = 0;
URL.createObjectURL = (blob: Blob) => {
  const file = path.join(dir, `blob${files++}.js`);
  // the worker script would turn the main-script Blob it is sent into a blob: URL of its own: point it at the file
  writeFileSync(file, (blob as TextBlob).content.replace('URL.createObjectURL(e.data.urlOrBlob)', JSON.stringify(mainScript)));
  return file;
};

const tf = await import('@tensorflow/tfjs');
const wasm = await import('@tensorflow/tfjs-backend-wasm');
const threads = Number(process.argv[2] ?? 2);
tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', threads > 0);
if (threads > 0) wasm.setThreadsCount(threads);

const timeout = setTimeout(() => {
  console.log('the backend did not start within 60 s');
  process.exit(3);
}, 60_000);
await tf.setBackend('wasm');
clearTimeout(timeout);
const pthreads = () =>
  (tf.backend() as unknown as { wasm: { PThread?: { runningWorkers: unknown[] } } }).wasm.PThread?.runningWorkers.length ?? 0;
console.log(`backend ${tf.getBackend()}, threads asked ${threads}, XNNPACK pool ${wasm.getThreadsCount()}, running pthreads ${pthreads()}`);
for (const rows of [64, 1024]) {
  const a = tf.randomNormal([rows, 784]);
  const b = tf.randomNormal([784, 128]);
  for (let i = 0; i < 5; i++) tf.matMul(a, b).dataSync();
  const reps = rows === 64 ? 300 : 50;
  const start = performance.now();
  for (let i = 0; i < reps; i++) {
    const product = tf.matMul(a, b);
    product.dataSync();
    product.dispose();
  }
  console.log(`matMul (${rows}, 784)·(784, 128): ${((performance.now() - start) / reps).toFixed(3)} ms; running pthreads ${pthreads()}`);
  tf.dispose([a, b]);
}
process.exit(0);
