// Command-line flags: yargs reads and validates them; the flags for config
// fields come from FIELDS in config.ts, so every option is declared once.
//
// Which config: a full run starts from the spec defaults. A rerun (--stage,
// --from, --list, --dry-run) refers to the run in --out: it starts from that
// run's config.json. Either way --config, then the flags, override it.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import yargs, { type Options } from 'yargs';
import { UsageError, callerPath, parseOrHelp, withCliConventions } from './conventions.js';
import { BACKENDS, CONFIG_KEYS, ConfigError, DEFAULTS, FIELDS, checkField, describeValue, resolveConfig, type Config } from '../config.js';
import { STAGE_NAMES, type StageName } from '../stage-names.js';
import { SORT_COLUMNS, type SortColumn } from '../runs.js';

export type Mode = 'run' | 'list' | 'dry-run' | 'runs' | 'gc';

export interface Invocation {
  config: Config;
  mode: Mode;
  compare: string[]; // --compare: other report folders, read from where the user typed them
  keep: string[]; // --gc: the report folders whose cache entries stay (default: --out)
  sort: SortColumn; // --runs --sort
  json: boolean; // --runs --json
  stages: StageName[]; // --stage
  from: StageName | undefined; // --from
  force: boolean;
  base: BaseConfig; // what the flags and --config were applied to
  overrides: Partial<Config>; // what the flags and --config changed in the base
}

/** The config a run starts from: the spec defaults, or the config.json of the run in --out. */
export type BaseConfig =
  | { kind: 'defaults' } // a full run
  | { kind: 'run'; folder: string; config: Config } // a rerun of the run in --out
  | { kind: 'no-run'; folder: string }; // a rerun, but --out holds no run: the defaults

export { UsageError };

const EXAMPLES = [
  ['npm run pipeline', 'train, evaluate and report with the spec defaults'],
  ['npm run pipeline -- --stage visualize', 'redraw the charts from cached results'],
  ['npm run pipeline -- --from evaluate', 'rerun evaluate and everything after it'],
  ['npm run pipeline -- --train-size 2000 --epochs 1 --no-reference', 'a quick run on a subset'],
  ['npm run pipeline -- --list', 'show each stage and whether it is cached'],
  ['npm run pipeline -- --runs', 'list every training in the cache, with its accuracies'],
  ['npm run pipeline -- --compare reports-lr05', 'set another run folder beside reports/ in its report'],
] as const;

function configOption(key: keyof Config): Options {
  const field = FIELDS[key];
  const type = field.kind === 'boolean' ? 'boolean' : field.kind === 'integer' || field.kind === 'number' ? 'number' : 'string';
  return {
    type,
    // --experiments alone is true, --no-experiments false, --experiments extended the extended set
    ...(field.kind === 'experiments'
      ? { coerce: (value: unknown) => (value === '' || value === 'true' ? true : value === 'false' ? false : value) }
      : {}),
    describe: field.description,
    // No yargs default: an absent flag must not override --config. The default is still shown.
    defaultDescription: JSON.stringify(DEFAULTS[key]),
    ...(field.kind === 'backend' ? { choices: [...BACKENDS] } : {}),
    group: 'Pipeline options:',
  };
}

/** The raw text given for a flag, for error messages about values yargs turned into NaN or Infinity. */
function rawValue(argv: readonly string[], flag: string): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${flag}`) return argv[i + 1] ?? '';
    if (argv[i]!.startsWith(`--${flag}=`)) return argv[i]!.slice(flag.length + 3);
  }
  return '';
}

/** What each flag that takes a value expects: the config fields but the on/off ones, and --config. */
const VALUE_EXPECTED = new Map<string, string>([
  ...CONFIG_KEYS.filter((key) => FIELDS[key].kind !== 'boolean' && FIELDS[key].kind !== 'experiments').map((key): [string, string] => {
    const field = FIELDS[key];
    const expected =
      field.kind === 'integer' || field.kind === 'number'
        ? 'a number'
        : field.kind === 'backend'
          ? `one of ${BACKENDS.join(', ')}`
          : field.path
            ? 'a folder'
            : 'a value';
    return [field.flag, expected];
  }),
  ['config', 'a JSON file'],
]);

/**
 * yargs reads `--lr -Infinity` as --lr without a value, then the short flags -I -n -f -i -t -y (it knows
 * plain negative numbers only): a flag that takes a value takes the word after it, as the user meant.
 */
function bindValues(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') return [...words, ...argv.slice(i)];
    const next = argv[i + 1];
    const takesValue = word.startsWith('--') && VALUE_EXPECTED.has(word.slice(2));
    if (takesValue && next !== undefined && /^-[^-]/.test(next) && next !== '-h') {
      words.push(`${word}=${next}`);
      i++;
    } else {
      words.push(word);
    }
  }
  return words;
}

/** One line for a flag that takes a value but was given none, or negated (`--no-seed`); null when there is none. */
function valueMistake(words: readonly string[]): string | null {
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (word === '--') break;
    if (!word.startsWith('--')) continue;
    const name = word.slice(2);
    const expected = VALUE_EXPECTED.get(name);
    if (expected !== undefined) {
      const next = words[i + 1];
      if (next === undefined || next.startsWith('-')) {
        return `${word}: expected ${expected} after it, found ${next === undefined ? 'nothing' : next}`;
      }
    } else if (name.startsWith('no-') && VALUE_EXPECTED.has(name.slice(3))) {
      // yargs would read --no-seed as seed 0
      return `${word}: expected --${name.slice(3)} with ${VALUE_EXPECTED.get(name.slice(3))}; only on/off options have a --no- form`;
    }
  }
  return null;
}

/**
 * The JSON object of options in `file`. A syntax error or any other JSON value is a UsageError that starts with
 * `source` (how the user named the file) and, for a syntax error, says it expected `expectedJson`.
 */
function readOptionsObject(file: string, source: string, expectedJson: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`${source}: expected ${expectedJson}, found a syntax error (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(`${source}: expected a JSON object of options, found ${describeValue(parsed)}`);
  }
  return parsed as Record<string, unknown>;
}

function readConfigFile(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new UsageError(`--config ${file}: expected a JSON file of options, found no such file`);
  return readOptionsObject(file, `--config ${file}`, 'JSON');
}

/** The config of the run in `folder`, or null if it holds none; a damaged one is a UsageError naming the file. */
function readRunConfig(folder: string): Config | null {
  const file = path.join(folder, 'config.json');
  if (!existsSync(file)) return null;
  const options = readOptionsObject(file, file, `the JSON config of the run in --out ${folder}`);
  try {
    // The folder it lies in is the run's --out, wherever it was first written.
    return { ...resolveConfig(options, file), out: folder };
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

/** A word quoted so that it can be pasted into a shell. */
export const shellWord = (word: string) => (/^[\w./@%+=:,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`);

/** The flags that turn `base` into `config`, e.g. ["--epochs", "3", "--no-reference"]. */
export function flagsFor(config: Config, base: Config): string[] {
  const words: string[] = [];
  for (const key of CONFIG_KEYS) {
    if (config[key] === base[key]) continue;
    const { flag } = FIELDS[key];
    const value = config[key];
    if (typeof value === 'boolean') words.push(value ? `--${flag}` : `--no-${flag}`);
    else words.push(`--${flag}`, shellWord(String(value)));
  }
  return words;
}

/** `npm run pipeline -- WORDS`, as a user would type it. */
export function commandLine(words: readonly string[]): string {
  return words.length === 0 ? 'npm run pipeline' : `npm run pipeline -- ${words.join(' ')}`;
}

const describeFields = (fields: Partial<Config>) =>
  (Object.keys(fields) as (keyof Config)[])
    .map((key) => `${FIELDS[key].flag} ${typeof fields[key] === 'string' && fields[key] === '' ? '""' : String(fields[key])}`)
    .join(', ');

/** One line: which config this run used, e.g. "using the config of reports/ (epochs 3), overridden by: none". */
export function configNote(invocation: Pick<Invocation, 'base' | 'overrides'>): string {
  const overridden = `overridden by: ${describeFields(invocation.overrides) || 'none'}`;
  const { base } = invocation;
  if (base.kind === 'defaults') return `using the defaults, ${overridden}`;
  const folder = `${base.folder.replace(/\/+$/, '')}/`;
  if (base.kind === 'no-run') return `${folder} holds no run (no config.json): using the defaults, ${overridden}`;
  const changed = Object.fromEntries(
    CONFIG_KEYS.filter((key) => key !== 'out' && base.config[key] !== DEFAULTS[key]).map((key) => [key, base.config[key]]),
  );
  return `using the config of ${folder} (${describeFields(changed) || 'the defaults'}), ${overridden}`;
}

/** The pipeline's flags: one per config field (from FIELDS), the stage selection, and --config. */
function pipelineParser(words: readonly string[]) {
  return withCliConventions(
    yargs([...words])
      .scriptName('npm run pipeline --')
      .usage(
        '$0 [options]\n\nTrains the 784-128-64-10 network on MNIST with TF.js, checks it against a pure-TypeScript reference, and writes reports/.',
      )
      .options(Object.fromEntries(CONFIG_KEYS.map((key) => [FIELDS[key].flag, configOption(key)])))
      .options({
        stage: {
          type: 'string',
          array: true,
          choices: STAGE_NAMES,
          describe: 'Run this stage (repeatable), plus whatever upstream of it is missing or stale',
          group: 'Stage selection:',
        },
        from: {
          type: 'string',
          choices: STAGE_NAMES,
          describe: 'Run this stage and everything downstream of it',
          group: 'Stage selection:',
        },
        force: { type: 'boolean', default: false, describe: 'Ignore the cache: rerun every selected stage', group: 'Stage selection:' },
        list: {
          type: 'boolean',
          default: false,
          describe: "Print the DAG with each stage's state (cached, stale, missing) and exit",
          group: 'Stage selection:',
        },
        'dry-run': {
          type: 'boolean',
          default: false,
          describe: 'Print what would run, and why, without running it',
          group: 'Stage selection:',
        },
        runs: {
          type: 'boolean',
          default: false,
          describe:
            'List every training the cache holds (TF.js, reference, experiment variants): config, accuracies, time, commit, report folders',
          group: 'Runs:',
        },
        sort: {
          type: 'string',
          choices: SORT_COLUMNS,
          default: 'when',
          describe: 'With --runs: order by this column (when = newest first; val, test, time = highest first)',
          group: 'Runs:',
        },
        json: { type: 'boolean', default: false, describe: 'With --runs: print the rows as JSON', group: 'Runs:' },
        compare: {
          type: 'string',
          array: true,
          describe:
            "Report folders to set beside the run in --out: its report gains a 'Compared with' section (trains nothing when cached)",
          group: 'Runs:',
        },
        gc: {
          type: 'string',
          array: true,
          describe:
            'Remove the cache entries that none of these report folders (default: --out) was made from; report folders are never touched',
          group: 'Runs:',
        },
        config: {
          type: 'string',
          describe: 'JSON file of options (the keys of reports/config.json); flags override it',
          defaultDescription: 'none',
          group: 'Pipeline options:',
        },
      }),
    EXAMPLES,
  );
}

type ParsedFlags = NonNullable<Awaited<ReturnType<typeof parseOrHelp<unknown>>>> & Record<string, unknown>;

/** The --config file, then the explicit flags: every value checked, paths read from where the user typed them. */
function readOverrides(parsed: ParsedFlags, words: readonly string[], env: NodeJS.ProcessEnv) {
  if (Array.isArray(parsed.config)) {
    throw new UsageError(`--config: expected one file, found ${parsed.config.length} (${parsed.config.join(', ')})`);
  }
  const typedConfig = parsed.config as string | undefined;
  if (typedConfig?.trim() === '') throw new UsageError(`--config: expected a JSON file, found ${describeValue(typedConfig)}`);
  const configFile = typedConfig === undefined ? undefined : callerPath(typedConfig, env);
  const overrides: Record<string, unknown> = configFile ? readConfigFile(configFile) : {};
  const fromFlags = new Set<keyof Config>();
  const errors: string[] = [];
  for (const key of CONFIG_KEYS) {
    const { flag, path: isPath } = FIELDS[key];
    const value = parsed[flag];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      errors.push(`--${flag}: expected one value, found ${value.length} (${value.join(', ')})`);
      continue;
    }
    const unreadable = typeof value === 'number' && !Number.isFinite(value); // NaN, or a word such as 1e400 read as Infinity
    const problem = checkField(key, value, `--${flag}`, unreadable ? rawValue(words, flag) || undefined : undefined);
    if (problem) {
      errors.push(problem);
      continue;
    }
    overrides[key] = isPath && value !== '' ? callerPath(value as string, env) : value; // '' is --data-dir's "the default"
    fromFlags.add(key);
  }
  if (errors.length > 0) throw new UsageError(errors.join('\n'));
  try {
    return { overrides, fromFlags, configFile, given: resolveConfig(overrides, configFile ? `--config ${configFile}` : 'option') };
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
}

/** Flags that contradict each other, or the run in --out: refused with an example of what works. */
function refuseContradictions(parsed: ParsedFlags, stages: StageName[], from: StageName | undefined, config: Config, overrides: object) {
  if (stages.length > 0 && from !== undefined) {
    throw new UsageError(
      `--stage and --from contradict each other: --stage runs only the named stages, --from runs one stage and all after it. ` +
        `Use one, e.g. "npm run pipeline -- --from ${from}" or "npm run pipeline -- --stage ${stages[0]}"`,
    );
  }
  if (parsed.list && (parsed['dry-run'] || parsed.force)) {
    throw new UsageError(
      `--list only reports the cache; it cannot be combined with ${parsed.force ? '--force' : '--dry-run'}. Example: npm run pipeline -- --list`,
    );
  }
  // Typed now, not inherited: a rerun that leaves the extended set keeps the run's --long-epochs, which nothing reads.
  if (Object.hasOwn(overrides, 'longEpochs') && config.longEpochs > 0 && config.experiments !== 'extended') {
    throw new UsageError(
      `--long-epochs ${config.longEpochs} sets the long schedules of --experiments extended, and this run has ` +
        `${config.experiments ? 'only --experiments' : 'no --experiments'}. Example: npm run pipeline -- --experiments extended --long-epochs 100`,
    );
  }
  if (!config.reference && (stages.includes('reference') || from === 'reference')) {
    throw new UsageError(
      Object.hasOwn(overrides, 'reference')
        ? '--no-reference contradicts selecting the reference stage. Example: npm run pipeline -- --stage reference'
        : `the run in ${config.out}/ was made with --no-reference; add --reference to train the reference. Example: npm run pipeline -- --stage reference --reference`,
    );
  }
}

/**
 * Parses and validates argv (without the node and script words). Throws UsageError on bad input.
 * `env` tells where the user typed the command (INIT_CWD, see callerPath) and what npm took for itself.
 */
export async function parseArgs(
  argv: readonly string[],
  out: (text: string) => void = console.log,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Invocation | null> {
  const words = bindValues(argv);
  const optional = CONFIG_KEYS.filter((key) => FIELDS[key].kind === 'experiments').map((key) => FIELDS[key].flag);
  const parsed = await parseOrHelp(pipelineParser(words), words, out, env, optional).catch((error: unknown) => {
    // `--backend` with no value, which yargs reports as a choice on several lines
    const invalidChoice = error instanceof UsageError && error.message.startsWith('Invalid values:');
    const mistake = invalidChoice ? valueMistake(words) : null;
    throw mistake ? new UsageError(mistake) : error;
  });
  if (parsed === null) return null;
  const mistake = valueMistake(words);
  if (mistake) throw new UsageError(mistake);
  const flags = parsed as ParsedFlags;
  const { overrides, fromFlags, configFile, given } = readOverrides(flags, words, env);

  // A full run starts from the defaults; a rerun from the config of the run in --out.
  const stages = (parsed.stage ?? []) as StageName[];
  const from = parsed.from as StageName | undefined;
  const gc = flags.gc as string[] | undefined;
  const compare = ((flags.compare as string[] | undefined) ?? []).map((folder) => callerPath(folder, env));
  const mode: Mode = parsed.list ? 'list' : parsed['dry-run'] ? 'dry-run' : flags.runs ? 'runs' : gc ? 'gc' : 'run';
  refuseModeMix(flags, mode, stages, from, compare);
  // A compare redoes the report of the run in --out, from the cache, unless --stage or --from says more.
  if (compare.length > 0 && stages.length === 0 && from === undefined) stages.push('report');
  const rerun = stages.length > 0 || from !== undefined || mode !== 'run';
  const runConfig = rerun ? readRunConfig(given.out) : null;
  const base: BaseConfig = !rerun
    ? { kind: 'defaults' }
    : runConfig
      ? { kind: 'run', folder: given.out, config: runConfig }
      : { kind: 'no-run', folder: given.out };
  const baseConfig = runConfig ?? DEFAULTS;
  const config: Config = { ...baseConfig };
  const changed: Partial<Config> = {};
  for (const key of CONFIG_KEYS.filter((field) => Object.hasOwn(overrides, field))) {
    (config as unknown as Record<string, unknown>)[key] = given[key];
    if (key !== 'out' && given[key] !== baseConfig[key]) (changed as Record<string, unknown>)[key] = given[key];
  }
  refuseContradictions(flags, stages, from, config, overrides);

  const origin = (key: keyof Config) =>
    fromFlags.has(key)
      ? ''
      : Object.hasOwn(overrides, key)
        ? ` from --config ${configFile}`
        : base.kind === 'run'
          ? ` from the run in ${base.folder.replace(/\/+$/, '')}/`
          : ', the default';
  const changedOnlyBatch = Object.hasOwn(overrides, 'gradcheckBatch') && !Object.hasOwn(overrides, 'trainSize');
  const sizeProblem = gradcheckBatchProblem(config, origin, changedOnlyBatch);
  if (sizeProblem) throw new UsageError(sizeProblem);
  for (const folder of compare) {
    if (!existsSync(path.join(folder, 'metrics.json'))) {
      throw new UsageError(
        `--compare ${folder}: expected a report folder of this pipeline (with metrics.json), found ${existsSync(folder) ? 'none in it' : 'no such folder'}`,
      );
    }
  }
  return {
    config,
    mode,
    stages,
    from,
    force: Boolean(parsed.force),
    base,
    overrides: changed,
    compare,
    keep: gc === undefined ? [] : gc.length > 0 ? gc.map((folder) => callerPath(folder, env)) : [config.out],
    sort: flags.sort as SortColumn,
    json: Boolean(flags.json),
  };
}

/** --runs, --gc, --list and --dry-run each do one thing; --compare and --json go with one mode only. */
function refuseModeMix(flags: ParsedFlags, mode: Mode, stages: StageName[], from: StageName | undefined, compare: string[]): void {
  const given = [
    ['--runs', flags.runs],
    ['--gc', flags.gc !== undefined],
    ['--list', flags.list],
    ['--dry-run', flags['dry-run']],
  ]
    .filter(([, on]) => on)
    .map(([flag]) => flag as string);
  if (given.length > 1)
    throw new UsageError(`${given.join(' and ')}: expected one of them, found both; e.g. npm run pipeline -- ${given[0]}`);
  if ((mode === 'runs' || mode === 'gc') && (stages.length > 0 || from !== undefined || compare.length > 0 || flags.force)) {
    throw new UsageError(
      `--${mode} only reads or cleans the cache; it cannot be combined with --stage, --from, --force or --compare. Example: npm run pipeline -- --${mode}`,
    );
  }
  if (flags.json && mode !== 'runs')
    throw new UsageError('--json: expected --runs beside it (it prints the runs table as JSON); e.g. npm run pipeline -- --runs --json');
}

/**
 * The gradcheck stage, part of every full run, checks its gradients on the first --gradcheck-batch
 * images of the training split (gradcheckBatch in pipeline/stages/gradcheck.ts): the split must hold that many.
 * Blames --train-size unless this command changed only --gradcheck-batch; `origin` says where a value came from.
 */
function gradcheckBatchProblem(config: Config, origin: (key: keyof Config) => string, blameBatch: boolean): string | null {
  const { trainSize, gradcheckBatch } = config;
  if (gradcheckBatch <= trainSize) return null;
  const trainSizeFlag = `--train-size ${trainSize}${origin('trainSize')}`;
  const batchFlag = `--gradcheck-batch ${gradcheckBatch}${origin('gradcheckBatch')}`;
  return blameBatch
    ? `${batchFlag}: expected at most the ${trainSize} training images (${trainSizeFlag}); give a smaller --gradcheck-batch or more training images`
    : `${trainSizeFlag}: expected at least the ${gradcheckBatch} images of the gradient-check batch (${batchFlag}); give more training images or a smaller --gradcheck-batch`;
}
