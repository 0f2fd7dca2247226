// `npm run predict -- FILE…`: read the flags, load the trained model, classify
// each image, and turn failures into messages and an exit code. TF.js and canvas
// are imported only after the flags parse, so --help is quick.

import { existsSync, statSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { EXIT_FAILED, UsageError, parseOrHelp, readFlags, withCliConventions } from './conventions.js';
import { BACKENDS, DEFAULTS, type BackendName } from '../config.js';
import { MODEL_NAMES, type ModelName } from '../predict/model-names.js';

const EXAMPLES = [
  ['npm run predict -- my-digit.png', 'the top 3 digits for one drawing'],
  ['npm run predict -- a.png b.jpg --json', 'machine-readable results'],
  ['npm run predict -- a.png --show-input seen/', 'also save the 28×28 image the network saw'],
  ['npm run predict -- a.png --model reference', 'use the pure-TypeScript reference model'],
  ['npm run predict -- a.png --model best', 'use the best model of npm run pipeline -- --experiments'],
] as const;

interface PredictInvocation {
  files: string[];
  model: ModelName;
  out: string;
  json: boolean;
  showInput: string | undefined;
  backend: BackendName;
}

/** Flags that take one value, each with an example of giving it once. */
const SINGLE_FLAGS: Record<string, string> = {
  model: '--model best',
  out: '--out reports',
  json: '--json',
  'show-input': '--show-input seen/',
  backend: '--backend wasm',
};

/** Refuses a flag given twice (`--out A --out B`): which one was meant is a guess we do not make. */
function refuseRepeatedFlags(argv: readonly string[]): void {
  const seen = new Map<string, string[]>();
  for (const arg of argv) {
    if (arg === '--') break;
    const match = /^--(?:no-)?([^=]+)/.exec(arg);
    if (!match) continue;
    const flag = match[1]!.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`); // --showInput is --show-input
    if (!Object.hasOwn(SINGLE_FLAGS, flag)) continue;
    seen.set(flag, [...(seen.get(flag) ?? []), arg]);
  }
  for (const [flag, uses] of seen) {
    if (uses.length > 1) throw new UsageError(`--${flag} was given ${uses.length} times; give it once, e.g. ${SINGLE_FLAGS[flag]}`);
  }
}

async function parsePredictArgs(argv: readonly string[]): Promise<PredictInvocation | null> {
  refuseRepeatedFlags(argv);
  const parser = withCliConventions(
    yargs([...argv])
      .scriptName('npm run predict --')
      .command('$0 [files..]', 'Reads PNG or JPEG digits, prepares each the way MNIST was made, and prints the top 3 digits.', (command) =>
        command.positional('files', { type: 'string', array: true, describe: 'PNG or JPEG images, each of one digit, any size' }),
      )
      .options({
        model: {
          type: 'string',
          choices: MODEL_NAMES,
          default: 'tfjs',
          describe: 'Which trained model: <out>/model/tfjs, <out>/model/reference, or <out>/model/best (saved by --experiments)',
        },
        out: { type: 'string', default: DEFAULTS.out, describe: 'Report folder of the pipeline run that trained the model' },
        json: { type: 'boolean', default: false, describe: 'Print one JSON document instead of lines of text' },
        'show-input': {
          type: 'string',
          describe: 'Write the 28×28 image the network saw for each file into this folder',
          defaultDescription: 'none',
        },
        backend: {
          type: 'string',
          choices: [...BACKENDS],
          default: DEFAULTS.backend,
          describe: 'TF.js backend (auto tries node, then wasm, then cpu)',
        },
      }),
    EXAMPLES,
  );
  const parsed = await parseOrHelp(parser, argv, console.log);
  if (parsed === null) return null;

  const positional = (parsed as { files?: unknown }).files; // yargs does not type a default command's positionals
  const files = Array.isArray(positional) ? positional.map(String) : [];
  if (files.length === 0) throw new UsageError(`expected at least one image file, e.g. ${EXAMPLES[0][0]}`);
  const showInput = parsed['show-input'];
  if (showInput !== undefined) {
    if (showInput.trim() === '') throw new UsageError(`--show-input needs a folder, e.g. ${EXAMPLES[2][0]}`);
    if (existsSync(showInput) && !statSync(showInput).isDirectory()) {
      throw new UsageError(`--show-input ${showInput}: expected a folder, found a file`);
    }
  }
  if (parsed.out.trim() === '') throw new UsageError('--out needs the report folder, e.g. --out reports');
  return {
    files,
    model: parsed.model as ModelName,
    out: parsed.out,
    json: parsed.json,
    showInput,
    backend: parsed.backend as BackendName,
  };
}

async function main(): Promise<number> {
  const flags = await readFlags(() => parsePredictArgs(hideBin(process.argv)), 'predict');
  if ('exitCode' in flags) return flags.exitCode;
  const { invocation } = flags;

  const { selectBackend } = await import('../tfjs/backend.js');
  const { formatResult, loadTrainedModel, predictFiles } = await import('../predict/predict.js');
  let model: Awaited<ReturnType<typeof loadTrainedModel>>;
  try {
    await selectBackend(invocation.backend);
    model = await loadTrainedModel(invocation.out, invocation.model);
  } catch (error) {
    // ModelError: no model, or an unreadable one; otherwise the backend did not start.
    console.error(`error: ${(error as Error).message}`);
    return EXIT_FAILED;
  }
  try {
    const results = await predictFiles(invocation.files, model, { showInput: invocation.showInput });
    if (invocation.json) {
      console.log(JSON.stringify({ model: invocation.model, out: invocation.out, results }, null, 2));
    } else {
      for (const result of results) (result.ok ? console.log : console.error)(formatResult(result));
    }
    const failed = results.filter((result) => !result.ok).length;
    if (failed > 0 && !invocation.json) console.error(`${failed} of ${results.length} files failed`);
    return failed > 0 ? EXIT_FAILED : 0;
  } finally {
    model.dispose();
  }
}

process.exitCode = await main();
