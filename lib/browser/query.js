'use strict';
// deltacast/query, CommonJS: the module body (query_body.js) on require's @tanstack/query-core.
module.exports = require('./query_body.js')(require('@tanstack/query-core'));
