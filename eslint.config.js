'use strict';
// ESLint flat config. The package is CommonJS; lib/index.mjs (the ESM entry) and any
// other .mjs file is an ES module. `npm run lint` runs it.

const js = require('@eslint/js');
const globals = require('globals');

const dirs = ['lib', 'test', 'bench', 'scripts', 'examples'];
const commonjsFiles = [...dirs.flatMap((dir) => [`${dir}/**/*.js`, `${dir}/**/*.cjs`]), 'eslint.config.js'];
const moduleFiles = dirs.map((dir) => `${dir}/**/*.mjs`);

module.exports = [
  {
    ignores: ['build/', 'node_modules/'],
  },
  {
    files: commonjsFiles,
    languageOptions: {
      ecmaVersion: 'latest',
      sourceType: 'commonjs',
      globals: { ...globals.node },
    },
  },
  {
    files: moduleFiles,
    languageOptions: {
      ecmaVersion: 'latest',
      sourceType: 'module',
      // Node's globals without the CommonJS ones (require, module, __dirname).
      globals: { ...globals.nodeBuiltin },
    },
  },
  {
    files: [...commonjsFiles, ...moduleFiles],
    rules: {
      ...js.configs.recommended.rules,
      'no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
];
