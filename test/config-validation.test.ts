// Flags and config files as an adversarial user writes them: numbers yargs misreads, keys every object
// has, files nested 100,000 deep, a training set smaller than the gradient-check batch, and paths typed
// from a subfolder. Each is one line and exit code 2, before any work.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, UsageError } from '../pipeline/cli/args.js';
import { EXIT_USAGE } from '../pipeline/cli/conventions.js';
import { ConfigError, DEFAULTS, resolveConfig } from '../pipeline/config.js';
import { ROOT, runCli } from './helpers/cli.js';

const PIPELINE = 'pipeline/cli/pipeline.ts';
const KNOWN =
  'known: dataDir, trainSize, valSize, testSize, epochs, batchSize, lr, seed, backend, reference, referenceThreads, gradcheckBatch, experiments, longEpochs, jobs, cacheDir, out';
const DEEP = 100_000;

/** The message parseArgs refuses `argv` with; fails unless it is a UsageError. */
async function refusal(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const error = await parseArgs(argv, () => {}, env).then(
    () => null,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(UsageError);
  return (error as UsageError).message;
}

/** What the real CLI prints for a refused flag: the message, one line, and where to read every flag. */
const usageStderr = (message: string) => `error: ${message}\nRun "npm run pipeline -- --help" for every flag.\n`;

let work: string;
beforeAll(() => (work = mkdtempSync(path.join(os.tmpdir(), 'config-validation-'))));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const full = path.join(work, name);
  writeFileSync(full, text);
  return full;
}

/** A folder holding a run's config.json with `text`. */
function runFolder(name: string, text: string): string {
  const folder = path.join(work, name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, 'config.json'), text);
  return folder;
}

describe('numeric flags followed by a negative or non-finite word', () => {
  it.each([
    [['--lr', 'Infinity'], '--lr: expected a finite number more than 0, found Infinity'],
    [['--lr', '-Infinity'], '--lr: expected a finite number more than 0, found -Infinity'],
    [['--lr=-Infinity'], '--lr: expected a finite number more than 0, found -Infinity'],
    [['--lr', '1e400'], '--lr: expected a finite number more than 0, found 1e400'],
    [['--lr', 'NaN'], '--lr: expected a number, found "NaN"'],
    [['--lr', '-NaN'], '--lr: expected a number, found "-NaN"'],
    [['--lr', '-0.5'], '--lr: expected more than 0, found -0.5'],
    [['--lr', '-.5'], '--lr: expected more than 0, found -0.5'],
    [['--seed', '-1'], '--seed: expected at least 0, found -1'],
    [['--seed', 'Infinity'], '--seed: expected a whole number from 0 to 2^53 − 1, found Infinity'],
    [['--epochs', '-3'], '--epochs: expected at least 1, found -3'],
    [['--epochs', '-1e3'], '--epochs: expected at least 1, found -1000'],
    [['--epochs', '-Infinity'], '--epochs: expected a whole number of at least 1, found -Infinity'],
    [['--reference-threads', '-Infinity'], '--reference-threads: expected a whole number from 0 to 8, found -Infinity'],
    [['--epochs', '-x'], '--epochs: expected a number, found "-x"'],
  ])('%j', async (argv, message) => {
    expect(await refusal(argv)).toBe(message);
  });

  it('through the real CLI: one line, exit 2', () => {
    const result = runCli(PIPELINE, ['--lr', '-Infinity']);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toBe(usageStderr('--lr: expected a finite number more than 0, found -Infinity'));
  });
});

describe('flags that take a value, given none', () => {
  it.each([
    [['--lr'], '--lr: expected a number after it, found nothing'],
    [['--lr', '--epochs', '3'], '--lr: expected a number after it, found --epochs'],
    [['--out'], '--out: expected a folder after it, found nothing'],
    [['--config'], '--config: expected a JSON file after it, found nothing'],
    [['--backend'], '--backend: expected one of auto, node, wasm, cpu after it, found nothing'],
    [['--no-seed'], '--no-seed: expected --seed with a number; only on/off options have a --no- form'],
    [['--config', 'a.json', '--config', 'b.json'], '--config: expected one file, found 2 (a.json, b.json)'],
    [['--config', ''], '--config: expected a JSON file, found ""'],
  ])('%j', async (argv, message) => {
    expect(await refusal(argv)).toBe(message);
  });
});

describe('keys every object has are unknown options', () => {
  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('%s in a --config file', async (key) => {
    const options = file(`${key}.json`, `{"${key}": {"epochs": 1}}`);
    expect(await refusal(['--config', options])).toBe(`--config ${options}: unknown option "${key}" (${KNOWN})`);
  });

  it.each(['constructor', 'toString', '__proto__'])("%s in a run's config.json", async (key) => {
    const folder = runFolder(`run-${key}`, `{"${key}": {"epochs": 1}}`);
    expect(await refusal(['--list', '--out', folder])).toBe(`${path.join(folder, 'config.json')}: unknown option "${key}" (${KNOWN})`);
  });

  it('{"__proto__": {"epochs": 1}} from JSON.parse changes nothing', () => {
    const overrides = JSON.parse('{"__proto__": {"epochs": 1}}') as Record<string, unknown>;
    expect(() => resolveConfig(overrides, 'file.json')).toThrow(ConfigError);
    expect(() => resolveConfig(overrides, 'file.json')).toThrow(`file.json: unknown option "__proto__" (${KNOWN})`);
    expect(DEFAULTS.epochs).toBe(15);
    expect(({} as Record<string, unknown>).epochs).toBeUndefined();
  });
});

describe(`config files nested ${DEEP.toLocaleString('en')} deep`, () => {
  const deepArray = `{"epochs": ${'['.repeat(DEEP)}${']'.repeat(DEEP)}}`;
  const deepObject = `${'{"a":'.repeat(DEEP)}1${'}'.repeat(DEEP)}`;
  const deepKnownKey = `{"out": ${'{"a":'.repeat(DEEP)}1${'}'.repeat(DEEP)}}`;

  it('an array under a known key is described, not printed', async () => {
    const options = file('deep-array.json', deepArray);
    expect(await refusal(['--config', options])).toBe(`--config ${options}: epochs: expected a number, found an array`);
  });

  it('an object under a known key is described, not printed', async () => {
    const options = file('deep-known.json', deepKnownKey);
    expect(await refusal(['--config', options])).toBe(`--config ${options}: out: expected a string, found an object`);
  });

  it('an object under an unknown key', async () => {
    const options = file('deep-object.json', deepObject);
    expect(await refusal(['--config', options])).toBe(`--config ${options}: unknown option "a" (${KNOWN})`);
  });

  it("the same in a run's config.json", async () => {
    const folder = runFolder('run-deep', deepArray);
    expect(await refusal(['--stage', 'visualize', '--out', folder])).toBe(
      `${path.join(folder, 'config.json')}: epochs: expected a number, found an array`,
    );
  });

  it('a long string is cut to 40 characters', async () => {
    const options = file('long.json', JSON.stringify({ backend: 'x'.repeat(100_000) }));
    expect(await refusal(['--config', options])).toBe(
      `--config ${options}: backend: expected one of auto, node, wasm, cpu, found "${'x'.repeat(40)}…"`,
    );
  });

  it('through the real CLI: one line, exit 2', () => {
    const options = file('deep-cli.json', deepArray);
    const result = runCli(PIPELINE, ['--config', options]);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toBe(usageStderr(`--config ${options}: epochs: expected a number, found an array`));
  });
});

describe('a training set smaller than the gradient-check batch', () => {
  it('--train-size 1 names the training set and the default batch, before anything is created', () => {
    const folder = mkdtempSync(path.join(work, 'small-'));
    const result = runCli(PIPELINE, [
      '--train-size',
      '1',
      '--out',
      path.join(folder, 'reports'),
      '--cache-dir',
      path.join(folder, 'cache'),
    ]);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toBe(
      usageStderr(
        '--train-size 1: expected at least the 8 images of the gradient-check batch (--gradcheck-batch 8, the default); ' +
          'give more training images or a smaller --gradcheck-batch',
      ),
    );
    expect(readdirSync(folder)).toEqual([]);
  });

  it.each([
    [
      ['--train-size', '4', '--gradcheck-batch', '8'],
      '--train-size 4: expected at least the 8 images of the gradient-check batch (--gradcheck-batch 8); give more training images or a smaller --gradcheck-batch',
    ],
    [
      ['--gradcheck-batch', '60000'],
      '--gradcheck-batch 60000: expected at most the 50000 training images (--train-size 50000, the default); give a smaller --gradcheck-batch or more training images',
    ],
  ])('%j', async (argv, message) => {
    expect(await refusal(argv)).toBe(message);
  });

  it('says which file a value came from', async () => {
    const options = file('small.json', JSON.stringify({ trainSize: 2 }));
    expect(await refusal(['--config', options])).toBe(
      `--train-size 2 from --config ${options}: expected at least the 8 images of the gradient-check batch (--gradcheck-batch 8, the default); ` +
        'give more training images or a smaller --gradcheck-batch',
    );
    const folder = runFolder('run-small', JSON.stringify({ ...DEFAULTS, trainSize: 2 }));
    expect(await refusal(['--stage', 'visualize', '--out', folder])).toBe(
      `--train-size 2 from the run in ${folder}/: expected at least the 8 images of the gradient-check batch (--gradcheck-batch 8 from the run in ${folder}/); ` +
        'give more training images or a smaller --gradcheck-batch',
    );
  });

  it('a training set exactly the size of the batch is accepted', async () => {
    const invocation = await parseArgs(['--train-size', '8'], () => {}, {});
    expect(invocation!.config.trainSize).toBe(8);
  });
});

describe('paths typed from a subfolder (INIT_CWD, as npm run leaves it)', () => {
  it('--out, --cache-dir, --data-dir and --config are read from where they were typed', async () => {
    const caller = mkdtempSync(path.join(work, 'caller-'));
    writeFileSync(path.join(caller, 'options.json'), JSON.stringify({ epochs: 3 }));
    const flags = ['--out', 'rel', '--cache-dir', 'cache', '--data-dir', 'mnist', '--config', 'options.json'];
    const { config } = (await parseArgs(flags, () => {}, { INIT_CWD: caller }))!;
    expect(config).toMatchObject({
      out: path.join(caller, 'rel'),
      cacheDir: path.join(caller, 'cache'),
      dataDir: path.join(caller, 'mnist'),
      epochs: 3,
    });
  });

  it('stays relative to the project when typed inside it', async () => {
    const { config } = (await parseArgs(['--out', 'rel'], () => {}, { INIT_CWD: path.join(ROOT, 'docs') }))!;
    expect(config.out).toBe(path.join('docs', 'rel'));
  });

  it('moves no default, and not --data-dir "" (the default data)', async () => {
    const { config } = (await parseArgs(['--data-dir', ''], () => {}, { INIT_CWD: work }))!;
    expect(config).toEqual(DEFAULTS);
  });

  it('through the real CLI: --list and --dry-run name the folders in the caller', () => {
    const caller = mkdtempSync(path.join(work, 'cli-caller-'));
    writeFileSync(path.join(caller, 'options.json'), JSON.stringify({ epochs: 3 }));
    const listed = runCli(PIPELINE, ['--out', 'rel', '--cache-dir', 'cache', '--list'], { INIT_CWD: caller });
    expect(listed.status).toBe(0);
    expect(listed.stdout.split('\n')).toEqual(
      expect.arrayContaining([
        `${caller}/rel/ holds no run (no config.json): using the defaults, overridden by: cache-dir ${caller}/cache`,
        `stages in order, with their code version (cache: ${caller}/cache):`,
      ]),
    );
    const planned = runCli(PIPELINE, ['--out', 'rel', '--data-dir', 'mnist', '--config', 'options.json', '--dry-run'], {
      INIT_CWD: caller,
    });
    expect(planned.status).toBe(0);
    expect(planned.stdout.split('\n')).toEqual(
      expect.arrayContaining([
        `${caller}/rel/ holds no run (no config.json): using the defaults, overridden by: data-dir ${caller}/mnist, epochs 3`,
        'would run (cache: .cache):', // the default cache stays the project's
      ]),
    );
    expect(readdirSync(caller)).toEqual(['options.json']);
  });

  it('an INIT_CWD inherited outside the project (npx from a script npm started elsewhere) is not followed', () => {
    const here = mkdtempSync(path.join(work, 'here-'));
    const stale = mkdtempSync(path.join(work, 'stale-'));
    const result = runCli(PIPELINE, ['--out', 'rel', '--cache-dir', 'cache', '--list'], { INIT_CWD: stale }, here);
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n')).toContain('stages in order, with their code version (cache: cache):');
    expect(result.stdout.split('\n')).toContain('rel/ holds no run (no config.json): using the defaults, overridden by: cache-dir cache');
  });

  it('through the real CLI without INIT_CWD: nothing changes', () => {
    const out = `no-such-run-${process.pid}`;
    const result = runCli(PIPELINE, ['--out', out, '--list'], { INIT_CWD: undefined });
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n')).toContain(`${out}/ holds no run (no config.json): using the defaults, overridden by: none`);
    expect(existsSync(path.join(ROOT, out))).toBe(false);
  });
});
