// ts-jest in ESM mode: vega 6, vega-lite 6 and yargs 18 ship ESM only.
/** @type {import('jest').Config} */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
  testTimeout: 120000,
  setupFiles: ['<rootDir>/test/helpers/setup-env.ts'],
};
