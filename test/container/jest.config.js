/**
 * The container suite (issue 6): real image, compose stack and `podman kube play`, against the
 * engine at DOCKER_HOST. Run it with test/container/run.sh; the fast `npx jest` run does not
 * pick these files up (they end in .spec.ts, the main config matches *.test.ts).
 */
module.exports = {
  rootDir: '../..',
  testEnvironment: 'node',
  roots: ['<rootDir>/test/container'],
  testMatch: ['**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }] },
  // Builds the image once, before any suite uses it.
  globalSetup: '<rootDir>/test/container/global-setup.ts',
  testTimeout: 300_000,
  // One suite at a time: each brings up its own containers on a 2-core machine.
  maxWorkers: 1,
};
