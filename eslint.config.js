// ESLint for civicflow's own browser scripts (`npm run lint:js`). CommonJS: package.json sets no "type".
const js = require("@eslint/js");
const globals = require("globals");

module.exports = [
  js.configs.recommended,
  {
    files: ["web/static/js/**/*.js"],
    languageOptions: {
      ecmaVersion: "latest",
      sourceType: "module",
      globals: globals.browser
    }
  },
  {
    // The instance page's diagram loads as a classic script, not a module: no import or export there.
    files: ["web/static/js/diagram.js"],
    languageOptions: { sourceType: "script" }
  }
];
