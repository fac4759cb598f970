// Loads a LuCI class module the way luci.js's require() does: the leading
// 'require NAME [as ALIAS]' strings name the dependencies, the source becomes
// the body of function(window, document, L, ...deps), and the class it
// returns is instantiated once (openwrt/luci modules/luci-base/htdocs/
// luci-static/resources/luci.js, require/compileClass).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const APP = join(ROOT, 'openwrt', 'luci', 'luci-app-wg-endpointd');
export const RESOURCES = join(APP, 'htdocs', 'luci-static', 'resources');

// LuCI's baseclass.extend() returns a class whose prototype holds the
// members; this stand-in does the same for plain objects.
const baseclass = {
  extend(members) {
    const Class = function () {};
    Object.assign(Class.prototype, members);
    return Class;
  },
};

// LuCI's _() translates; untranslated it returns its argument.
globalThis._ = (text) => text;

export function requires(source) {
  const deps = [];
  const re = /^\s*(['"])(use strict|require[ \t]+(\S+)(?:[ \t]+as[ \t]+([a-zA-Z_]\S*))?)\1\s*;?/;
  let rest = source;
  for (let m; (m = re.exec(rest)); rest = rest.slice(m[0].length)) {
    if (m[3]) deps.push({ name: m[3], as: m[4] || m[3].replace(/[^a-zA-Z0-9_]/g, '_') });
  }
  return deps;
}

// known: stand-ins for other modules by name; env: window, document and L.
export function load(name, known = {}, env = {}) {
  const source = readFileSync(join(RESOURCES, name.replace(/\./g, '/') + '.js'), 'utf8');
  const deps = requires(source);
  const values = deps.map((d) => {
    if (d.name === 'baseclass') return baseclass;
    if (d.name in known) return known[d.name];
    return load(d.name, known, env);
  });
  const factory = new Function('window', 'document', 'L', ...deps.map((d) => d.as), source);
  const Class = factory(env.window || {}, env.document || {}, env.L || {}, ...values);
  return new Class();
}

// `node luci.mjs dump NAME` prints a module's plain data as JSON, for pytest.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'dump') {
  const mod = load(process.argv[3]);
  const out = {};
  for (const key in mod) if (typeof mod[key] !== 'function') out[key] = mod[key];
  process.stdout.write(JSON.stringify(out));
}
