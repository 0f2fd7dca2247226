// `npm run predict -- FILE…`: read the flags, load the trained model, classify
// each image, and turn failures into messages and an exit code. TF.js and canvas
// are imported only after the flags parse, so --help is quick.
//
// Paths are read from the folder the user typed them in (callerPath: npm starts us
// in the project's root) and shown as typed. stdout holds only the results, each with
// its low-confidence note when it has one; every other note, hint and error goes to stderr.

import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { shellWord } from './args.js';
import {
  EXIT_FAILED,
  UsageError,
  callerFolder,
  callerPath,
  exitQuietlyWhenOutputCloses,
  parseOrHelp,
  readFlags,
  withCliConventions,
} from './conventions.js';
import { failureMessage } from './failures.js';
import { BACKENDS, DEFAULTS, PROJECT_ROOT, type BackendName } from '../config.js';
import { MODEL_NAMES, type ModelName } from '../predict/model-names.js';
import type { FileResult, ReportFolder, TrainedModel } from '../predict/classify.js';

const EXAMPLES = [
  ['npm run predict -- my-digit.png', 'the top 3 digits for one drawing'],
  ['npm run -s predict -- a.png b.jpg --json', 'machine-readable results (-s: npm prints nothing of its own on stdout)'],
  ['npm run predict -- a.png --show-input seen/', 'also save the 28×28 image the network saw'],
  ['npm run predict -- a.png --model reference', 'use the pure-TypeScript reference model'],
  ['npm run predict -- a.png --model best', 'use the best model of npm run pipeline -- --experiments'],
] as const;

/** The project's own report folder: where `npm run pipeline` writes when given no --out. */
const PROJECT_REPORTS = path.join(PROJECT_ROOT, DEFAULTS.out);

/** A path as the user typed it, and as this process opens it. */
interface TypedPath {
  typed: string;
  path: string;
}

interface PredictInvocation {
  files: TypedPath[];
  model: ModelName;
  report: ReportFolder;
  json: boolean;
  showInput: TypedPath | undefined;
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

/**
 * The report folder to read: --out as typed from the user's folder; without it, ./reports there when
 * it holds a model/ folder, else the project's own reports (the pipeline's default).
 */
function reportToRead(out: string | undefined, env: NodeJS.ProcessEnv): ReportFolder {
  const pipelineOut = (folder: string, shown: string) => (path.resolve(folder) === PROJECT_REPORTS ? null : shown);
  const typed = out ?? DEFAULTS.out;
  const folder = callerPath(typed, env);
  if (out !== undefined || existsSync(path.join(folder, 'model')))
    return { path: folder, shown: typed, pipelineOut: pipelineOut(folder, typed) };
  const fromCaller = path.relative(callerFolder(env), PROJECT_REPORTS);
  const inside = fromCaller !== '' && !fromCaller.startsWith('..') && !path.isAbsolute(fromCaller);
  return { path: PROJECT_REPORTS, shown: inside ? fromCaller : PROJECT_REPORTS, pipelineOut: null };
}

async function parsePredictArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<PredictInvocation | null> {
  refuseRepeatedFlags(argv);
  const parser = withCliConventions(
    yargs([...argv])
      .scriptName('npm run predict --')
      .command(
        '$0 [files..]',
        'Reads PNG or JPEG digits (drawings or photos of paper), prepares each the way MNIST was made, and prints the top 3 digits, with a low-confidence note when the picture or the answer is weak.',
        (command) =>
          command.positional('files', { type: 'string', array: true, describe: 'PNG or JPEG images, each of one digit, any size' }),
      )
      .options({
        model: {
          type: 'string',
          choices: MODEL_NAMES,
          default: 'tfjs',
          describe: 'Which trained model: <out>/model/tfjs, <out>/model/reference, or <out>/model/best (saved by --experiments)',
        },
        out: {
          type: 'string',
          describe: 'Report folder of the pipeline run that trained the model',
          defaultDescription: `./${DEFAULTS.out} if it has model/, else the project's ${DEFAULTS.out}`,
        },
        json: { type: 'boolean', default: false, describe: 'Print one JSON document instead of lines of text' },
        'show-input': {
          type: 'string',
          describe: 'Write the 28×28 image the network saw for each file into this folder, under a free name (never over a file)',
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
    const folder = callerPath(showInput, env);
    if (existsSync(folder) && !statSync(folder).isDirectory()) {
      throw new UsageError(`--show-input ${showInput}: expected a folder, found a file`);
    }
  }
  if (parsed.out?.trim() === '') throw new UsageError('--out needs the report folder, e.g. --out reports');
  const typedPath = (typed: string): TypedPath => ({ typed, path: callerPath(typed, env) });
  return {
    files: files.map(typedPath),
    model: parsed.model as ModelName,
    report: reportToRead(parsed.out, env),
    json: parsed.json,
    showInput: showInput === undefined ? undefined : typedPath(showInput),
    backend: parsed.backend as BackendName,
  };
}

/** `result` with its paths as the user typed them: the image file, and the --show-input image under the typed folder. */
function asTyped(result: FileResult, file: TypedPath, showInput: TypedPath | undefined): FileResult {
  if (!result.ok) return { ...result, file: file.typed };
  if (result.inputImage === undefined || showInput === undefined) return { ...result, file: file.typed };
  return { ...result, file: file.typed, inputImage: path.join(showInput.typed, path.basename(result.inputImage)) };
}

async function main(): Promise<number> {
  exitQuietlyWhenOutputCloses();
  const argv = hideBin(process.argv);
  const flags = await readFlags(() => parsePredictArgs(argv), 'predict');
  if ('exitCode' in flags) return flags.exitCode;
  const { invocation } = flags;

  const { selectBackend } = await import('../tfjs/backend.js');
  const { formatResult, inputImageName, loadTrainedModel, predictFiles } = await import('../predict/classify.js');
  let trained: TrainedModel;
  try {
    await selectBackend(invocation.backend);
    trained = await loadTrainedModel(invocation.report, invocation.model);
  } catch (error) {
    // ModelError: no model, a damaged or an unreadable one; otherwise the backend did not start.
    console.error(`error: ${(error as Error).message}`);
    return EXIT_FAILED;
  }
  if (!invocation.json) console.error(`model: ${trained.folder}`);
  if (trained.unchecked) console.error(`note: could not check ${trained.folder}: ${trained.unchecked}; loading it as it is`);
  if (invocation.json && process.env.npm_lifecycle_event === 'predict' && process.env.npm_config_loglevel !== 'silent') {
    // npm prints its "> script" banner on stdout; only -s keeps it away from the JSON.
    console.error(
      `note: npm printed its banner on stdout above the JSON; npm run -s predict -- ${argv.map(shellWord).join(' ')} prints the JSON alone`,
    );
  }
  try {
    const { files, showInput } = invocation;
    const found = await predictFiles(
      files.map((file) => file.path),
      trained.model,
      { showInput: showInput?.path },
    );
    const results = found.map((result, i) => asTyped(result, files[i]!, showInput));
    for (const result of results) {
      if (!result.ok || result.inputImage === undefined || showInput === undefined) continue;
      const wanted = path.join(showInput.typed, inputImageName(result.file));
      if (result.inputImage !== wanted) console.error(`${wanted} exists; wrote ${result.inputImage}`);
    }
    if (invocation.json) {
      const document = { model: invocation.model, out: invocation.report.shown, modelFolder: trained.folder, results };
      console.log(JSON.stringify(document, null, 2));
    } else {
      for (const result of results) (result.ok ? console.log : console.error)(formatResult(result));
    }
    const failed = results.filter((result) => !result.ok).length;
    if (failed > 0 && !invocation.json) console.error(`${failed} of ${results.length} files failed`);
    return failed > 0 ? EXIT_FAILED : 0;
  } catch (error) {
    console.error(failureMessage(error)); // e.g. a --show-input folder that cannot be written: one line naming it
    return EXIT_FAILED;
  } finally {
    trained.model.dispose();
  }
}

process.exitCode = await main();
