// The usual mistakes at the command line, tried the way users make them: through
// npm itself (the `--` trap), misspelt flags and choices, and the bin commands.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, UsageError } from '../pipeline/cli/args.js';
import { EXIT_USAGE, closest } from '../pipeline/cli/conventions.js';
import { ROOT } from './helpers/cli.js';

/** The environment of a user's shell: none of the npm_* variables of the `npm test` that runs us. */
function shellEnv(): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('npm_'))), CI: 'true' };
}

function run(command: string, args: string[]) {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', env: shellEnv(), timeout: 120_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('the npm `--` trap, through npm itself', () => {
  it('npm run pipeline --epochs 1: npm eats --epochs; we exit 2 with the command that works', () => {
    const result = run('npm', ['run', 'pipeline', '--epochs', '1']);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toContain('did you mean: npm run pipeline -- --epochs 1\n');
  });

  it('npm run pipeline --experiments does not start a default run', () => {
    const result = run('npm', ['run', 'pipeline', '--experiments']);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toContain('did you mean: npm run pipeline -- --experiments\n');
    expect(result.stdout).not.toContain('▶'); // no stage started
  });

  it('npm run pipeline --experiments extended: the value npm left behind goes back to its flag', () => {
    const result = run('npm', ['run', 'pipeline', '--experiments', 'extended']);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toContain('did you mean: npm run pipeline -- --experiments extended\n');
    expect(result.stdout).not.toContain('▶');
  });

  it('npm run predict --json x.png does not silently drop --json', () => {
    const result = run('npm', ['run', 'predict', '--json', 'x.png']);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toContain('did you mean: npm run predict -- x.png --json\n');
  });

  it('a value is matched to its flag by its choices, wherever npm left it', () => {
    const result = run('npm', ['run', 'predict', 'x.png', '--model', 'reference']);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toContain('did you mean: npm run predict -- x.png --model reference\n');
  });

  it('--no-reference and --flag=value survive npm as settings, and are given back as flags', () => {
    const result = run('npm', ['run', 'pipeline', '--no-reference', '--epochs=2']);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toContain('did you mean: npm run pipeline -- --epochs 2 --no-reference\n');
  });

  it("npm's own npm_config_* settings are not mistaken for ours", () => {
    const result = run('npm', ['run', 'pipeline', '--', '--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('--epochs');
  });
});

describe('did you mean', () => {
  const message = async (...argv: string[]) => {
    const attempt = parseArgs(argv, () => {});
    await expect(attempt).rejects.toThrow(UsageError);
    return ((await attempt.catch((error: Error) => error)) as Error).message;
  };

  it('--epoch 3 suggests --epochs', async () => {
    expect(await message('--epoch', '3')).toBe('Unknown argument: --epoch. Did you mean --epochs?');
  });
  it('--no-refrence suggests --no-reference', async () => {
    expect(await message('--no-refrence')).toBe('Unknown argument: --no-refrence. Did you mean --no-reference?');
  });
  it('--stage vizualize: one line with the closest stage', async () => {
    expect(await message('--stage', 'vizualize')).toMatch(
      /^--stage vizualize: expected one of the \d+ listed by --help\. Did you mean --stage visualize\?$/,
    );
  });
  it('--backend gpu: one line with the choices and the closest', async () => {
    expect(await message('--backend', 'gpu')).toBe('--backend gpu: expected one of auto, node, wasm, cpu. Did you mean --backend cpu?');
  });
  it('--from=evalute (with =) suggests evaluate', async () => {
    expect(await message('--from=evalute')).toMatch(/Did you mean --from evaluate\?$/);
  });
  it('suggests nothing for a word unlike any flag', async () => {
    expect(await message('--zzz')).toBe('Unknown argument: --zzz');
  });
  it('closest ignores case, - and _, and refuses far words', () => {
    expect(closest('train_size', ['train-size', 'test-size'])).toBe('train-size');
    expect(closest('EPOCH', ['epochs', 'seed'])).toBe('epochs');
    expect(closest('banana', ['epochs', 'seed'])).toBeNull();
  });
});

describe('the bin commands (npx, no `--`)', () => {
  it('npx mnist-pipeline passes flags straight to us', () => {
    const result = run('npx', ['mnist-pipeline', '--epoch', '3']);
    expect(result.status).toBe(EXIT_USAGE);
    expect(result.stderr).toContain('Did you mean --epochs?');
  });

  it('npx mnist-predict --help prints the help', () => {
    const result = run('npx', ['mnist-predict', '--help']);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('--show-input');
  });
});

describe('--help and --runs load no TF.js and no canvas', () => {
  // A CommonJS hook lists what was loaded; @tensorflow/* and canvas are CommonJS packages.
  let hook: string;
  beforeAll(() => {
    hook = path.join(mkdtempSync(path.join(os.tmpdir(), 'help-')), 'count-heavy.cjs');
    const heavy = '/@tensorflow|[/]canvas[/]/';
    writeFileSync(
      hook,
      `process.on('exit', () => process.stderr.write(' heavy: ' + Object.keys(require.cache).filter((m) => ${heavy}.test(m)).length));`,
    );
  });
  afterAll(() => rmSync(path.dirname(hook), { recursive: true, force: true }));
  const heavyModulesLoaded = (script: string, args = ['--help']) => {
    const result = spawnSync(process.execPath, ['--require', hook, '--import', 'tsx', path.join(ROOT, script), ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: shellEnv(),
    });
    expect(result.status).toBe(0);
    return Number(result.stderr.match(/heavy: (\d+)/)?.[1]);
  };

  it('npm run predict -- --help', () => {
    expect(heavyModulesLoaded('pipeline/cli/predict.ts')).toBe(0);
  });

  it('npm run pipeline -- --help', () => {
    expect(heavyModulesLoaded('pipeline/cli/pipeline.ts')).toBe(0);
  });

  it('npm run pipeline -- --runs (it reads manifests and the JSON half of entries)', () => {
    const cache = path.join(path.dirname(hook), 'cache');
    expect(heavyModulesLoaded('pipeline/cli/pipeline.ts', ['--runs', '--cache-dir', cache])).toBe(0);
  });
});
