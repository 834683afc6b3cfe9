/** Unit tests sit next to the code (app/**), integration and end-to-end suites under test/. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/app', '<rootDir>/charts', '<rootDir>/compose', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }] },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  // Generous: suites start real processes, and CI machines are small and sometimes busy.
  testTimeout: 60000,
  // The suites share one PostgreSQL and one Redis; two workers keep the 2-core machine responsive.
  maxWorkers: 2,
};
