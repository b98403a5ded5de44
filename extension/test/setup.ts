/**
 * Test setup. Packages loaded with Node's own `require` (vscode-languageclient) ask for `vscode` too:
 * hand them the same stand-in that the alias gives the extension's modules.
 */
import Module, { createRequire } from "node:module";
import * as stub from "./vscode";

const STUB_ID = "\0vscode-stub";
const require = createRequire(import.meta.url);
const internals = Module as unknown as {
  _resolveFilename(request: string, ...rest: unknown[]): string;
};
const resolve = internals._resolveFilename;
internals._resolveFilename = function (request: string, ...rest: unknown[]): string {
  return request === "vscode" ? STUB_ID : resolve.call(this, request, ...rest);
};
// Names the stand-in lacks become empty classes: vscode-languageclient subclasses many at load.
const exports = new Proxy(stub as Record<string | symbol, unknown>, {
  get: (target, name) => (name in target ? target[name] : class {}),
});
require.cache[STUB_ID] = {
  id: STUB_ID,
  filename: STUB_ID,
  loaded: true,
  exports,
} as unknown as NodeJS.Module;
