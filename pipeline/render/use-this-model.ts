// The report's "Use this model" section: how to use the saved models outside the pipeline,
// from the command line, from Node, from a browser page and from numpy.

import type { ModelName } from '../predict/model-names.js';
import { escapeHtml } from './document.js';

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
    '// Node, with @tensorflow/tfjs-node (its file:// loader)',
    "import * as tf from '@tensorflow/tfjs-node';",
    "const model = await tf.loadLayersModel('file://reports/model/tfjs/model.json');",
    '// input: 784 values in [0, 1], white ink on black, prepared as npm run predict does',
    'const probabilities = model.predict(tf.tensor2d(input, [1, 784])).dataSync();',
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
    '</section>',
  ].join('\n');
}
