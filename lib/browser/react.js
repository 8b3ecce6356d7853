'use strict';
// deltacast/react, CommonJS: the module body (react_body.js) on require's React and React Query.
module.exports = require('./react_body.js')(require('react'), require('@tanstack/react-query'), require('./query.js'));
