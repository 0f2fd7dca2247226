// What every command of ours does with yargs: strict flags, examples, help, and
// a UsageError instead of yargs exiting the process. It also catches the usual
// mistakes: flags that npm swallowed (no `--`), a misspelt flag, a value not
// among the choices. Light on purpose: both CLIs parse their flags before
// loading TF.js, vega or canvas, so --help stays fast.

import path from 'node:path';
import type { Argv } from 'yargs';
import { PROJECT_ROOT } from '../config.js';

/** Exit codes of both commands. */
export const EXIT_FAILED = 1; // the work failed: bad data, divergence, no model, an unreadable file
export const EXIT_USAGE = 2; // a flag was wrong
export const EXIT_INTERRUPTED = 130; // SIGINT / SIGTERM

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Applies the shared conventions to `parser`. */
export function withCliConventions<T>(parser: Argv<T>, examples: readonly (readonly [string, string])[]): Argv<T> {
  return parser
    .example(examples.map(([command, meaning]) => [command, meaning]))
    .strict()
    .strictOptions()
    .version(false)
    .help()
    .alias('help', 'h')
    .wrap(Math.min(110, process.stdout.columns || 110))
    .exitProcess(false)
    .showHelpOnFail(false)
    .fail((message, error) => {
      throw new UsageError(error ? error.message : message);
    });
}

/**
 * Runs a command's flag parser: the invocation, or the exit code when there is nothing to run
 * (0 after --help; EXIT_USAGE after printing a UsageError and where to read every flag).
 */
export async function readFlags<T>(parse: () => Promise<T | null>, script: string): Promise<{ invocation: T } | { exitCode: number }> {
  try {
    const invocation = await parse();
    return invocation === null ? { exitCode: 0 } : { invocation };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`error: ${error.message}\nRun "npm run ${script} -- --help" for every flag.`);
    return { exitCode: EXIT_USAGE };
  }
}

type Parsed<T> = Awaited<ReturnType<Argv<T>['parse']>>;

/**
 * Parses argv; returns null when yargs printed help (through `out`) instead of options.
 * `env` is where npm leaves the traces of flags it swallowed (see npmTrap); `optional` names the
 * valued flags that may also stand alone (--experiments [extended]), which yargs does not record.
 */
export async function parseOrHelp<T>(
  parser: Argv<T>,
  argv: readonly string[],
  out: (text: string) => void,
  env: NodeJS.ProcessEnv = process.env,
  optional: readonly string[] = [],
): Promise<Parsed<T> | null> {
  const options = { ...optionTable(parser), optional: new Set(optional) };
  const trap = npmTrap(options, argv, env);
  if (trap) throw new UsageError(trap);
  let helpShown = false;
  let parsed: unknown;
  try {
    parsed = await parser.parse([...argv], {}, (_error, _argv, output) => {
      if (output) {
        helpShown = true;
        out(output);
      }
    });
  } catch (error) {
    // yargs' own wording for an unknown flag or a value outside the choices is a wall of text; say it in one line.
    const mistake = error instanceof UsageError ? flagMistake(options, argv) : null;
    throw mistake ? new UsageError(mistake) : error;
  }
  return helpShown || (parsed as { help?: unknown }).help ? null : (parsed as Parsed<T>);
}

interface YargsOptions {
  key: Record<string, unknown>;
  boolean: string[];
  number: string[];
  choices: Record<string, readonly string[]>;
}

/** What the mistake finders need to know about a parser's flags. */
interface OptionTable {
  command: string; // how the user runs us, e.g. "npm run pipeline --"
  flags: string[]; // long flag names, kebab-case
  known: Set<string>; // every name yargs accepts, aliases included
  valued: Set<string>; // flags that take a value (not booleans)
  optional: Set<string>; // valued flags that may also stand alone (--experiments [extended])
  numeric: Set<string>;
  choices: Record<string, readonly string[]>;
}

function optionTable<T>(parser: Argv<T>): Omit<OptionTable, 'optional'> {
  const options = (parser as unknown as { getOptions(): YargsOptions }).getOptions(); // public in yargs, missing from its types
  const names = Object.keys(options.key).filter((name) => name !== 'version');
  const flags = names.filter((name) => name.length > 1 && name === name.toLowerCase()); // not yargs' camelCase twins
  const booleans = new Set(options.boolean);
  return {
    command: (parser as unknown as { $0: string }).$0,
    flags,
    known: new Set(names),
    valued: new Set(flags.filter((flag) => !booleans.has(flag))),
    numeric: new Set(options.number),
    choices: options.choices,
  };
}

/**
 * The npm `--` trap. `npm run pipeline --epochs 1` runs us with argv ["1"]: npm took `--epochs`
 * as one of its own settings and exported it as npm_config_epochs=true (`--epochs=1` gives
 * npm_config_epochs=1, `--no-reference` gives npm_config_reference=""). npm exports its own
 * settings under other names, and does not keep the flags' order, so a value is matched to
 * its flag by kind (a choice, a number) and then in order.
 * Returns the message with the corrected command, or null when npm left no trace.
 */
function npmTrap(options: OptionTable, argv: readonly string[], env: NodeJS.ProcessEnv): string | null {
  const script = options.command.match(/^npm run (\S+)/)?.[1];
  // Only when npm started us for this script (or npx): an env inherited by some other child says nothing.
  if (env.npm_lifecycle_event === undefined || (env.npm_lifecycle_event !== script && env.npm_lifecycle_event !== 'npx')) return null;
  const swallowed = options.flags.filter((flag) => env[`npm_config_${flag.replaceAll('-', '_')}`] !== undefined);
  if (swallowed.length === 0) return null;

  // Split argv into what reached us as flags (with their values) and stray words: values npm left behind, and positionals.
  const passed: string[] = [];
  const strays: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith('-')) strays.push(word);
    else if (word.includes('=') || !options.valued.has(word.replace(/^-+/, '')) || i + 1 === argv.length) passed.push(word);
    else passed.push(word, argv[++i]!);
  }
  const take = (test: (word: string) => boolean): string | undefined => {
    const index = strays.findIndex(test);
    return index < 0 ? undefined : strays.splice(index, 1)[0];
  };
  const words: string[] = [];
  let guessed = 0;
  for (const flag of swallowed) {
    const value = env[`npm_config_${flag.replaceAll('-', '_')}`]!;
    if (!options.valued.has(flag)) {
      words.push(value === '' || value === 'false' ? `--no-${flag}` : `--${flag}`);
      continue;
    }
    if (value !== 'true') {
      words.push(`--${flag}`, value); // --flag=value reached npm whole
      continue;
    }
    const choices = options.choices[flag];
    let given = choices ? take((word) => choices.includes(word)) : undefined;
    if (given === undefined) {
      guessed++; // matched by kind and order only
      given = (options.numeric.has(flag) ? take((word) => Number.isFinite(Number(word))) : undefined) ?? take(() => true);
    }
    if (given !== undefined) words.push(`--${flag}`, given);
    else words.push(...(options.optional.has(flag) ? [`--${flag}`] : [`--${flag}`, '<value>']));
  }
  const command = [options.command.replace(/ --$/, ''), '--', ...strays, ...words, ...passed].join(' ');
  const names = swallowed.map((flag) => `--${flag}`).join(', ');
  return (
    `npm took ${names} for itself: flags for us go after "--".\n` +
    `did you mean: ${command}` +
    (guessed > 1 ? '\n(npm does not keep the order of the flags it takes: check that each value follows its flag)' : '')
  );
}

/** The closest name by edit distance, ignoring case, `-` and `_`; null when none is close. */
export function closest(word: string, names: readonly string[]): string | null {
  const normal = (name: string) => name.toLowerCase().replace(/[-_]/g, '');
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const name of names) {
    const distance = normal(name).startsWith(normal(word)) && word.length >= 3 ? 0.5 : editDistance(normal(word), normal(name));
    if (distance < bestDistance) [best, bestDistance] = [name, distance];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : null;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}

/** One line for the first unknown flag or value outside its choices in argv, or null. */
function flagMistake(options: OptionTable, argv: readonly string[]): string | null {
  const known = options.known;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') break;
    if (!word.startsWith('--')) continue;
    const [name, inline] = word.slice(2).split(/=(.*)/s) as [string, string | undefined];
    const flag = known.has(name) ? name : name.startsWith('no-') && known.has(name.slice(3)) ? name.slice(3) : null;
    if (flag === null) {
      const negated = name.startsWith('no-')
        ? closest(
            name.slice(3),
            options.flags.filter((f) => !options.valued.has(f)),
          )
        : null;
      const suggestion = negated ? `no-${negated}` : closest(name, options.flags);
      return `Unknown argument: --${name}${suggestion ? `. Did you mean --${suggestion}?` : ''}`;
    }
    const choices = options.choices[flag];
    const value = inline ?? argv[i + 1];
    if (!choices || value === undefined || choices.includes(value)) continue;
    const suggestion = closest(value, choices);
    const listed = choices.length <= 8 ? `one of ${choices.join(', ')}` : `one of the ${choices.length} listed by --help`;
    return `--${flag} ${value}: expected ${listed}.${suggestion ? ` Did you mean --${flag} ${suggestion}?` : ''}`;
  }
  return null;
}

/**
 * The folder the user typed the command in. `npm run` starts us in the project's root and leaves
 * that folder as INIT_CWD. Anywhere else INIT_CWD is not ours to trust: it was inherited from
 * some npm process further up (a test run, another project's script), and our own working folder
 * is where the user is.
 */
export function callerFolder(env: NodeJS.ProcessEnv = process.env): string {
  const caller = env.INIT_CWD;
  return caller && process.cwd() === PROJECT_ROOT ? path.resolve(caller) : process.cwd();
}

/**
 * A path the user typed, as seen from this process: resolved from callerFolder. The answer stays
 * relative to our working folder where it can, so messages read as the user wrote them.
 */
export function callerPath(typed: string, env: NodeJS.ProcessEnv = process.env): string {
  const caller = callerFolder(env);
  if (path.isAbsolute(typed) || caller === process.cwd()) return typed;
  const absolute = path.resolve(caller, typed);
  const relative = path.relative(process.cwd(), absolute);
  return relative === '' ? '.' : relative.split(path.sep)[0] === '..' ? absolute : relative;
}

/**
 * A reader that closes our output early (`npm run pipeline | head -1`) has all it wanted: exit at
 * once and quietly, as a Unix tool does on SIGPIPE, instead of an unhandled EPIPE with a stack. The
 * exit handlers still release locks and stop child processes; a publish not yet switched changes nothing.
 */
export function exitQuietlyWhenOutputCloses(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
  }
}
