import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, UsageError } from '../pipeline/cli/args.js';
import { CONFIG_KEYS, DEFAULTS, FIELDS } from '../pipeline/config.js';
import { FLAGS_DOC, flagsDoc } from '../scripts/flags-doc.js';

const parse = (...argv: string[]) => parseArgs(argv, () => {});
const refused = async (argv: string[], message: string | RegExp) => {
  const attempt = parse(...argv);
  await expect(attempt).rejects.toThrow(UsageError);
  await expect(parse(...argv)).rejects.toThrow(message);
};

describe('CLI flags', () => {
  it('gives the spec defaults with no flags', async () => {
    const invocation = await parse();
    expect(invocation!.config).toEqual(DEFAULTS);
    expect(invocation!.mode).toBe('run');
  });

  it('--help lists every flag with its description and default', async () => {
    let help = '';
    const result = await parseArgs(['--help'], (text) => (help = text));
    expect(result).toBeNull();
    for (const key of CONFIG_KEYS) {
      expect(help).toContain(`--${FIELDS[key].flag}`);
      expect(help).toContain(FIELDS[key].description.slice(0, 30));
      expect(help).toContain(`[default: ${JSON.stringify(DEFAULTS[key])}]`);
    }
    for (const flag of ['--stage', '--from', '--force', '--list', '--dry-run', '--config']) expect(help).toContain(flag);
  });

  it('reads flags into the config', async () => {
    const { config, stages } = (await parse(
      '--epochs',
      '3',
      '--lr=0.1',
      '--backend',
      'cpu',
      '--no-reference',
      '--reference-threads',
      '1',
      '--stage',
      'train',
      '--stage',
      'evaluate',
    ))!;
    expect(config).toMatchObject({ epochs: 3, lr: 0.1, backend: 'cpu', reference: false, referenceThreads: 1 });
    expect(stages).toEqual(['train', 'evaluate']);
  });

  it('refuses unknown flags, suggesting the closest', () =>
    refused(['--epochz', '3'], 'Unknown argument: --epochz. Did you mean --epochs?'));
  it('refuses non-numbers, quoting what was given', () => refused(['--epochs', 'ten'], '--epochs: expected a number, found "ten"'));
  it('refuses epochs < 1', () => refused(['--epochs', '0'], '--epochs: expected at least 1, found 0'));
  it('refuses fractional epochs', () => refused(['--epochs', '1.5'], '--epochs: expected a whole number, found 1.5'));
  it('refuses batch size < 1', () => refused(['--batch-size', '0'], '--batch-size: expected at least 1, found 0'));
  it('refuses lr ≤ 0', () => refused(['--lr', '0'], '--lr: expected more than 0, found 0'));
  it('refuses more than 8 reference threads', () =>
    refused(['--reference-threads', '9'], '--reference-threads: expected at most 8, found 9'));
  it('refuses an unknown stage, suggesting the closest', () =>
    refused(['--stage', 'trian'], /^--stage trian: .*Did you mean --stage train\?$/));
  it('refuses an unknown backend, suggesting the closest', () =>
    refused(['--backend', 'gpu'], /^--backend gpu: .*Did you mean --backend cpu\?$/));
  it('refuses a positional argument', () => refused(['train'], 'Unknown argument: train'));
  it('refuses a flag given twice', () => refused(['--epochs', '2', '--epochs', '3'], '--epochs: expected one value, found 2 (2, 3)'));

  it('refuses --stage with --from, with an example of correct usage', () =>
    refused(
      ['--stage', 'train', '--from', 'evaluate'],
      /--stage and --from contradict each other[\s\S]*e\.g\. "npm run pipeline -- --from evaluate"/,
    ));
  it('refuses --list with --force', () =>
    refused(['--list', '--force'], '--list only reports the cache; it cannot be combined with --force'));
  it('refuses --no-reference with --stage reference', () =>
    refused(['--no-reference', '--stage', 'reference'], '--no-reference contradicts selecting the reference stage'));
});

describe('docs/flags.md', () => {
  it('is what `npm run docs` generates from the config table and --help (run it after changing a flag)', async () => {
    expect(readFileSync(FLAGS_DOC, 'utf8')).toBe(await flagsDoc());
  });

  it('documents every flag with its default', () => {
    const doc = readFileSync(FLAGS_DOC, 'utf8');
    for (const key of CONFIG_KEYS) expect(doc).toMatch(`| \`--${FIELDS[key].flag}`);
    for (const key of CONFIG_KEYS) expect(doc).toContain(`\` | \`${JSON.stringify(DEFAULTS[key])}\` |`);
  });
});

describe('--config FILE', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const full = path.join(dir, name);
    writeFileSync(full, text);
    return full;
  };

  it('reads options, and flags override it', async () => {
    const config = file('ok.json', JSON.stringify({ epochs: 4, lr: 0.05 }));
    const { config: resolved } = (await parse('--config', config, '--epochs', '2'))!;
    expect(resolved.epochs).toBe(2);
    expect(resolved.lr).toBe(0.05);
  });

  it('refuses unknown keys and wrong types, naming the file', async () => {
    const bad = file('bad.json', JSON.stringify({ epoch: 4, lr: 'fast' }));
    await refused(['--config', bad], `--config ${bad}: unknown option "epoch"`);
    await refused(['--config', bad], `--config ${bad}: lr: expected a number, found "fast"`);
  });

  it('refuses a missing file and invalid JSON', async () => {
    await refused(['--config', path.join(dir, 'none.json')], /none\.json: expected a JSON file of options, found no such file/);
    await refused(['--config', file('broken.json', '{"epochs": ')], /broken\.json: expected JSON, found a syntax error/);
  });
});
