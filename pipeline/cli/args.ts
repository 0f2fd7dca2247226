// Command-line flags: yargs reads and validates them; the flags for config
// fields come from FIELDS in config.ts, so every option is declared once.

import { existsSync, readFileSync } from 'node:fs';
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
}

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
    throw new UsageError(`--config ${file}: expected a JSON object of options, found ${Array.isArray(parsed) ? 'an array' : typeof parsed}`);
  }
  return parsed as Record<string, unknown>;
}

/** Parses and validates argv (without the node and script words). Throws UsageError on bad input. */
export async function parseArgs(argv: readonly string[], out: (text: string) => void = console.log): Promise<Invocation | null> {
  const parser = withCliConventions(
    yargs([...argv])
      .scriptName('npm run pipeline --')
      .usage('$0 [options]\n\nTrains the 784-128-64-10 network on MNIST with TF.js, checks it against a pure-TypeScript reference, and writes reports/.')
      .options(Object.fromEntries(CONFIG_KEYS.map((key) => [FIELDS[key].flag, configOption(key)])))
      .options({
        stage: { type: 'string', array: true, choices: STAGE_NAMES, describe: 'Run this stage (repeatable), plus whatever upstream of it is missing or stale', group: 'Stage selection:' },
        from: { type: 'string', choices: STAGE_NAMES, describe: 'Run this stage and everything downstream of it', group: 'Stage selection:' },
        force: { type: 'boolean', default: false, describe: 'Ignore the cache: rerun every selected stage', group: 'Stage selection:' },
        list: { type: 'boolean', default: false, describe: 'Print the DAG with each stage\'s state (cached, stale, missing) and exit', group: 'Stage selection:' },
        'dry-run': { type: 'boolean', default: false, describe: 'Print what would run, and why, without running it', group: 'Stage selection:' },
        config: { type: 'string', describe: 'JSON file of options (the keys of reports/config.json); flags override it', defaultDescription: 'none', group: 'Pipeline options:' },
      }),
    EXAMPLES,
  );
  const parsed = await parseOrHelp(parser, argv, out);
  if (parsed === null) return null;

  // Defaults, then the --config file, then explicit flags.
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
  let config: Config;
  try {
    config = resolveConfig(overrides, parsed.config ? `--config ${parsed.config}` : 'option');
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }

  const stages = (parsed.stage ?? []) as StageName[];
  const from = parsed.from as StageName | undefined;
  const mode: Mode = parsed.list ? 'list' : parsed['dry-run'] ? 'dry-run' : 'run';
  if (stages.length > 0 && from !== undefined) {
    throw new UsageError(
      `--stage and --from contradict each other: --stage runs only the named stages, --from runs one stage and all after it. ` +
        `Use one, e.g. "npm run pipeline -- --from ${from}" or "npm run pipeline -- --stage ${stages[0]}"`,
    );
  }
  if (parsed.list && (parsed['dry-run'] || parsed.force)) {
    throw new UsageError(`--list only reports the cache; it cannot be combined with ${parsed.force ? '--force' : '--dry-run'}. Example: npm run pipeline -- --list`);
  }
  if (!config.reference && (stages.includes('reference') || from === 'reference')) {
    throw new UsageError('--no-reference contradicts selecting the reference stage. Example: npm run pipeline -- --stage reference');
  }
  return { config, mode, stages, from, force: Boolean(parsed.force) };
}
