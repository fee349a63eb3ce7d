import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    // One moto S3 server for the whole run (the suites run on file://, memory:// and s3://).
    globalSetup: ['__test__/global-setup.ts'],
    // Native addons and worker_threads do not mix well (an addon is loaded once per
    // process and cannot be unloaded), so every test file runs in its own child process.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
})
