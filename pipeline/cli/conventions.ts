// What every command of ours does with yargs: strict flags, examples, help, and
// a UsageError instead of yargs exiting the process. Light on purpose: the
// predict CLI imports it without loading the pipeline's stages.

import type { Argv } from 'yargs';

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

type Parsed<T> = Awaited<ReturnType<Argv<T>['parse']>>;

/** Parses argv; returns null when yargs printed help (through `out`) instead of options. */
export async function parseOrHelp<T>(parser: Argv<T>, argv: readonly string[], out: (text: string) => void): Promise<Parsed<T> | null> {
  let helpShown = false;
  const parsed = await parser.parse([...argv], {}, (_error, _argv, output) => {
    if (output) {
      helpShown = true;
      out(output);
    }
  });
  return helpShown || (parsed as { help?: unknown }).help ? null : (parsed as Parsed<T>);
}
