// Command-line flags: yargs reads and validates them; the flags for config
// fields come from FIELDS in config.ts, so every option is declared once.
//
// Which config: a full run starts from the spec defaults. A rerun (--stage,
// --from, --list, --dry-run) refers to the run in --out: it starts from that
// run's config.json. Either way --config, then the flags, override it.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import yargs, { type Options } from 'yargs';
import { UsageError, parseOrHelp, withCliConventions } from './conventions.js';
import { BACKENDS, CONFIG_KEYS, ConfigError, DEFAULTS, FIELDS, checkField, resolveConfig, type Config } from '../config.js';
import { STAGE_NAMES, type StageName } from '../stage-names.js';

export type Mode = 'run' | 'list' | 'dry-run';

export interface Invocation {
  config: Config;
  mode: Mode;
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
] as const;

function configOption(key: keyof Config): Options {
  const field = FIELDS[key];
  const type = field.kind === 'boolean' ? 'boolean' : field.kind === 'integer' || field.kind === 'number' ? 'number' : 'string';
  return {
    type,
    describe: field.description,
    // No yargs default: an absent flag must not override --config. The default is still shown.
    defaultDescription: JSON.stringify(DEFAULTS[key]),
    ...(field.kind === 'backend' ? { choices: [...BACKENDS] } : {}),
    group: 'Pipeline options:',
  };
}

/** The raw text given for a flag, for error messages about values yargs turned into NaN. */
function rawValue(argv: readonly string[], flag: string): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${flag}`) return argv[i + 1] ?? '';
    if (argv[i]!.startsWith(`--${flag}=`)) return argv[i]!.slice(flag.length + 3);
  }
  return '';
}

function readConfigFile(file: string): Record<string, unknown> {
  if (!existsSync(file)) throw new UsageError(`--config ${file}: expected a JSON file of options, found no such file`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(`--config ${file}: expected JSON, found a syntax error (${(error as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(
      `--config ${file}: expected a JSON object of options, found ${Array.isArray(parsed) ? 'an array' : typeof parsed}`,
    );
  }
  return parsed as Record<string, unknown>;
}

/** The config of the run in `folder`, or null if it holds none; a damaged one is a UsageError naming the file. */
function readRunConfig(folder: string): Config | null {
  const file = path.join(folder, 'config.json');
  if (!existsSync(file)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new UsageError(
      `${file}: expected the JSON config of the run in --out ${folder}, found a syntax error (${(error as Error).message})`,
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new UsageError(
      `${file}: expected a JSON object of options, found ${parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : typeof parsed}`,
    );
  }
  try {
    // The folder it lies in is the run's --out, wherever it was first written.
    return { ...resolveConfig(parsed as Record<string, unknown>, file), out: folder };
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

/** Parses and validates argv (without the node and script words). Throws UsageError on bad input. */
export async function parseArgs(argv: readonly string[], out: (text: string) => void = console.log): Promise<Invocation | null> {
  const parser = withCliConventions(
    yargs([...argv])
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
        config: {
          type: 'string',
          describe: 'JSON file of options (the keys of reports/config.json); flags override it',
          defaultDescription: 'none',
          group: 'Pipeline options:',
        },
      }),
    EXAMPLES,
  );
  const parsed = await parseOrHelp(parser, argv, out);
  if (parsed === null) return null;

  // The --config file, then explicit flags, over the base.
  const overrides: Record<string, unknown> = parsed.config ? readConfigFile(parsed.config) : {};
  const errors: string[] = [];
  for (const key of CONFIG_KEYS) {
    const value = (parsed as Record<string, unknown>)[FIELDS[key].flag];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      errors.push(`--${FIELDS[key].flag}: expected one value, found ${value.length} (${value.join(', ')})`);
      continue;
    }
    const problem = checkField(key, value, `--${FIELDS[key].flag}`);
    if (problem && typeof value === 'number' && Number.isNaN(value)) {
      errors.push(`--${FIELDS[key].flag}: expected a number, found ${JSON.stringify(rawValue(argv, FIELDS[key].flag))}`);
    } else if (problem) {
      errors.push(problem);
    } else {
      overrides[key] = value;
    }
  }
  if (errors.length > 0) throw new UsageError(errors.join('\n'));
  let given: Config;
  try {
    given = resolveConfig(overrides, parsed.config ? `--config ${parsed.config}` : 'option');
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }

  const stages = (parsed.stage ?? []) as StageName[];
  const from = parsed.from as StageName | undefined;
  const mode: Mode = parsed.list ? 'list' : parsed['dry-run'] ? 'dry-run' : 'run';
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
  for (const key of CONFIG_KEYS.filter((field) => field in overrides)) {
    (config as unknown as Record<string, unknown>)[key] = given[key];
    if (key !== 'out' && given[key] !== baseConfig[key]) (changed as Record<string, unknown>)[key] = given[key];
  }

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
  if (!config.reference && (stages.includes('reference') || from === 'reference')) {
    throw new UsageError(
      'reference' in overrides
        ? '--no-reference contradicts selecting the reference stage. Example: npm run pipeline -- --stage reference'
        : `the run in ${config.out}/ was made with --no-reference; add --reference to train the reference. Example: npm run pipeline -- --stage reference --reference`,
    );
  }
  return { config, mode, stages, from, force: Boolean(parsed.force), base, overrides: changed };
}
