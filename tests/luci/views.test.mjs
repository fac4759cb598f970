// The two views rendered against stand-ins for LuCI's view, rpc, poll, uci,
// ui, dom, form and E() (openwrt/luci modules/luci-base/htdocs/luci-static/
// resources/{view,rpc,poll,uci,ui,form}.js and luci.js): enough to run every
// line of render() and the handlers and look at what they build.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load, ROOT } from './luci.mjs';

const DATA = join(ROOT, 'tests', 'data', 'luci');
const fixture = (name) => JSON.parse(readFileSync(join(DATA, name + '.json'), 'utf8'));
const KEYS = fixture('keys');

// luci.js: String.prototype.format substitutes %s, %d and friends in order.
String.prototype.format = function (...args) {
  return this.replace(/%[sdh]/g, () => String(args.shift()));
};
// luci.js: E(tag, [attrs], [children]) builds an element; here a plain tree.
globalThis.E = (tag, attrs, children) => {
  if (Array.isArray(attrs) || typeof attrs === 'string') [attrs, children] = [{}, attrs];
  return { tag, attrs: attrs || {}, children: [].concat(children ?? []) };
};
const text = (n) => (n == null ? '' : typeof n !== 'object' ? String(n)
  : n.children ? n.children.map(text).join(' ') : '');
const find = (n, pred, out = []) => {
  if (n && typeof n === 'object') {
    if (pred(n)) out.push(n);
    (n.children || []).forEach((c) => find(c, pred, out));
  }
  return out;
};

function uciStore(configs) {
  const store = structuredClone(configs);
  return {
    store,
    load: () => Promise.resolve(),
    sections: (conf, type) => (store[conf] || []).filter((s) => !type || s['.type'] === type),
    get: (conf, sid, opt) => {
      const s = (store[conf] || []).find((x) => x['.name'] === sid);
      return s == null ? null : opt == null ? s : s[opt];
    },
    set: (conf, sid, opt, val) => { store[conf].find((x) => x['.name'] === sid)[opt] = val; },
    add: (conf, type, name) => { (store[conf] = store[conf] || []).push({ '.type': type, '.name': name }); return name; },
  };
}

const NETWORK = [
  { '.type': 'interface', '.name': 'wan', proto: 'dhcp' },
  { '.type': 'interface', '.name': 'wg0', proto: 'wireguard' },
  { '.type': 'wireguard_wg0', '.name': 'cfg1', public_key: KEYS.home, description: 'Home server', endpoint_host: 'home.example' },
  { '.type': 'wireguard_wg0', '.name': 'cfg2', public_key: KEYS.office, endpoint_host: '198.51.100.7' },
];
const OWN = [
  { '.type': 'globals', '.name': 'globals', enabled: '1', probe_timeout: '0.5', host_routes: 'yes' },
  { '.type': 'peer', '.name': 'p1', interface: 'wg0', public_key: KEYS.office, managed: '0' },
];

function luci(answers) {
  const calls = [], polls = [], contents = [];
  const klass = { extend(m) { const C = function () {}; Object.assign(C.prototype, m); return C; } };
  const known = {
    view: klass,
    rpc: { declare: (o) => (...args) => { calls.push([o.object, o.method, args]); return Promise.resolve(answers[o.method]); } },
    poll: { add: (fn, every) => polls.push([fn, every]) },
    ui: { createHandlerFn: (ctx, fn, ...a) => () => (typeof fn === 'string' ? ctx[fn] : fn).apply(ctx, a),
          addNotification: (t, msg) => calls.push(['ui', 'notification', [text(msg)]]) },
    dom: { content: (node, tree) => contents.push(tree) },
  };
  const head = [];
  const env = {
    // luci.js: L.resource() is the URL of a file under luci-static/resources.
    L: { bind: (fn, self) => fn.bind(self), resolveDefault: (p, d) => Promise.resolve(p).catch(() => d),
         resource: (...parts) => ['/luci-static/resources', ...parts].join('/') },
    document: { querySelector: (sel) => (sel === 'head' ? { appendChild: (n) => head.push(n) } : {}) },
  };
  return { known, env, calls, polls, contents, head };
}

function statusAnswer(state, running = true) {
  return { running, pid: running ? 4242 : null, now: 1795303000, wg: 'ok', state,
    interfaces: [{ name: 'wg0', listen_port: 51820 }], live: [] };
}

test('status view: rows, badges, check now, polled every 5 s', async () => {
  const { known, env, calls, polls, contents } = luci({
    status: statusAnswer(fixture('fallback')), check: { result: 'woken', at: 1795302999 } });
  known.uci = uciStore({ network: NETWORK, 'wg-endpointd': OWN });
  const view = new (load('view.wg-endpointd.status', known, env).constructor)();
  const data = await view.load();
  const page = view.render(data);
  assert.deepEqual(polls.map((p) => p[1]), [5]);
  const all = text(page);
  for (const want of ['Interface wg0', 'Home server', 'fallback', '192.0.2.2:51820',
    'no handshake within 2 s', 'Check now', 'no reply'])
    assert.ok(all.includes(want), want);
  assert.ok(find(page, (n) => n.tag === 'span' && n.attrs.class === 'label warning').length);
  assert.equal(find(page, (n) => /\blabel \w/.test(n.attrs.class || '') && /important/.test(n.attrs.class)).length, 0);
  assert.equal(find(page, (n) => /Start the service/.test(text(n)) && n.tag === 'button').length, 0);
  const check = find(page, (n) => n.tag === 'button' && text(n) === 'Check now')[0];
  await check.attrs.click();
  assert.deepEqual(calls.filter((c) => c[1] === 'check'), [['wg-endpointd', 'check', [false]]]);
  assert.match(text(contents.at(-1)), /Checking…/);
  await polls[0][0]();
  assert.equal(contents.length, 2);
  assert.equal(view.handleSave, null);
  assert.equal(view.handleSaveApply, null);
});

test('status view: a down peer and a dead standby wear the danger label, and the page adds status.css', async () => {
  const state = fixture('down');
  state.groups = [{ name: 'vpn', interface: 'wg0', active: KEYS.home, members: [
    { public_key: KEYS.home, description: 'Home server', health: 'alive', latest_handshake: 1795302990 },
    { public_key: KEYS.office, health: 'dead', latest_handshake: 0 }] }];
  const { known, env, head } = luci({ status: statusAnswer(state) });
  known.uci = uciStore({ network: NETWORK, 'wg-endpointd': OWN });
  const view = new (load('view.wg-endpointd.status', known, env).constructor)();
  const page = view.render(await view.load());
  const labels = find(page, (n) => n.tag === 'span' && /^label\b/.test(n.attrs.class || ''));
  const byText = (t) => labels.filter((n) => text(n) === t).map((n) => n.attrs.class);
  assert.deepEqual([...new Set(byText('down'))], ['label danger']);
  assert.deepEqual([...new Set(byText('healthy'))], ['label success']);
  // group members: alive -> success, dead -> danger, as the peer rows
  const members = find(page, (n) => n.tag === 'td' && n.attrs['data-title'] === 'Members')[0];
  assert.deepEqual(find(members, (n) => n.tag === 'span').map((n) => n.attrs.class),
    ['label success', 'label danger']);
  assert.deepEqual(head.map((n) => [n.tag, n.attrs.rel, n.attrs.href]),
    [['link', 'stylesheet', '/luci-static/resources/wg-endpointd/status.css']]);
  assert.ok(existsSync(join(ROOT, 'openwrt', 'luci', 'luci-app-wg-endpointd', 'htdocs',
    'luci-static', 'resources', 'wg-endpointd', 'status.css')));
});

test('status view: each peer\'s history is folded away until asked for, and stays open across polls', async () => {
  const { known, env, polls, contents } = luci({ status: statusAnswer(fixture('fallback')) });
  known.uci = uciStore({ network: NETWORK, 'wg-endpointd': OWN });
  const view = new (load('view.wg-endpointd.status', known, env).constructor)();
  const page = view.render(await view.load());
  const details = find(page, (n) => n.tag === 'details');
  assert.equal(details.length, 1);  // only the peer that has a history
  assert.equal(details[0].attrs.open, null);  // folded
  assert.match(text(find(details[0], (n) => n.tag === 'summary')[0]), /History \(4\)/);
  const items = find(details[0], (n) => n.tag === 'li').map((n) => text(n).replace(/\s+/g, ' '));
  assert.equal(items.length, 4);
  assert.match(items[0], /up .*192\.0\.2\.2:51820.*failover/);
  assert.match(items[3], /^switch 192\.0\.2\.2:51820 → \[2001:db8:1::2\]:51820 failback , 0\.31 s , 1 d ago$/);
  details[0].attrs.toggle({ target: { open: true } });  // the user unfolds it
  await polls[0][0]();
  assert.equal(find(contents.at(-1), (n) => n.tag === 'details')[0].attrs.open, '');
  find(contents.at(-1), (n) => n.tag === 'details')[0].attrs.toggle({ target: { open: false } });
  await polls[0][0]();
  assert.equal(find(contents.at(-1), (n) => n.tag === 'details')[0].attrs.open, null);
});

test('status view: a stopped daemon gets a start button that asks check to start', async () => {
  const { known, env, calls } = luci({ status: statusAnswer(null, false), check: { result: 'started' } });
  known.uci = uciStore({ network: NETWORK, 'wg-endpointd': OWN });
  const view = new (load('view.wg-endpointd.status', known, env).constructor)();
  const page = view.render(await view.load());
  assert.match(text(page), /not running/);
  const start = find(page, (n) => n.tag === 'button' && /Start the service/.test(text(n)));
  assert.equal(start.length, 1);
  await start[0].attrs.click();
  assert.deepEqual(calls.filter((c) => c[1] === 'check'), [['wg-endpointd', 'check', [true]]]);
});

test('status view: empty states and a failed check', async () => {
  const { known, env, calls } = luci({
    status: { running: true, now: 1, wg: 'missing', state: { peers: [] }, interfaces: [], live: [] },
    check: { result: 'failed', error: 'could not signal the daemon' } });
  known.uci = uciStore({ network: [], 'wg-endpointd': [] });
  const view = new (load('view.wg-endpointd.status', known, env).constructor)();
  const page = view.render(await view.load());
  assert.match(text(page), /No WireGuard interface is configured/);
  assert.match(text(page), /wg program is missing/);
  await view.handleCheck(false);
  assert.match(calls.find((c) => c[0] === 'ui')[2][0], /could not signal/);
});

// form.js stand-in: records sections and options.
function formStub() {
  const made = [];
  class Option {
    constructor(cls, name, title, descr) {
      Object.assign(this, { cls, name, title, description: descr, keylist: [], vallist: [] });
    }
    value(k, l) { this.keylist.push(k); this.vallist.push(l ?? k); }
  }
  // form.js AbstractSection: tab(name, title, description) declares a tab,
  // taboption(tab, cls, ...) adds an option to it; a tabbed section renders
  // only the options of its tabs.
  class Section {
    constructor(cls, args) { Object.assign(this, { cls, args, options: [], tabs: null }); }
    option(cls, name, title, descr) { const o = new Option(cls, name, title, descr); this.options.push(o); return o; }
    tab(name, title, descr) {
      this.tabs = this.tabs || {};
      assert.ok(!this.tabs[name], 'tab declared twice: ' + name);
      this.tabs[name] = { title, description: descr };
    }
    taboption(tab, ...args) {
      assert.ok(this.tabs && this.tabs[tab], 'no tab ' + tab);
      const o = this.option(...args);
      o.tab = tab;
      return o;
    }
  }
  class Map {
    constructor(conf, title, descr) { Object.assign(this, { conf, title, descr, sections: [] }); made.push(this); }
    section(cls, ...args) { const s = new Section(cls, args); this.sections.push(s); return s; }
    render() { return this; }
  }
  return { made, form: { Map, NamedSection: 'NamedSection', GridSection: 'GridSection',
    Flag: 'Flag', ListValue: 'ListValue', Value: 'Value', DynamicList: 'DynamicList' } };
}

test('settings view: every option of the table, with placeholders and validation', async () => {
  const { form } = formStub();
  const uci = uciStore({ network: NETWORK, 'wg-endpointd': OWN });
  const options = load('wg-endpointd.options');
  const view = new (load('view.wg-endpointd.settings', { view: luci({}).known.view, form, uci }, luci({}).env).constructor)();
  await view.load();
  const map = view.render();
  assert.equal(map.conf, 'wg-endpointd');
  const [globals, peers] = map.sections;
  assert.deepEqual(globals.args, ['globals', 'globals', 'Settings']);
  assert.deepEqual(globals.options.map((o) => o.name), options.GLOBALS.map((g) => g.name));
  assert.deepEqual(Object.keys(globals.tabs), ['general', 'advanced']);
  assert.deepEqual([globals.tabs.general.title, globals.tabs.advanced.title], ['General Settings', 'Advanced Settings']);
  // a tabbed section shows only options on a tab
  assert.deepEqual(globals.options.filter((o) => !globals.tabs[o.tab]).map((o) => o.name), []);
  const opt = Object.fromEntries(globals.options.map((o) => [o.name, o]));
  assert.equal(opt.enabled.cls, 'Flag');
  assert.equal(opt.host_routes.cfgvalue('globals'), '1'); // 'yes' in the file
  assert.equal(opt.check_interval.placeholder, '10');
  assert.equal(opt.check_interval.description, options.GLOBALS.find((g) => g.name === 'check_interval').help);
  assert.equal(opt.check_interval.validate('globals', '2.5'), true);
  assert.notEqual(opt.check_interval.validate('globals', '0'), true);
  assert.equal(opt.check_interval.validate('globals', ''), true);
  assert.deepEqual(opt.log_level.keylist, ['debug', 'info', 'warning', 'error']);
  assert.deepEqual(opt.interface.keylist, ['wg0']);
  assert.equal(opt.interface.validate('globals', 'wg0'), true);
  assert.notEqual(opt.interface.validate('globals', 'wan'), true); // not WireGuard
  assert.deepEqual(opt.trigger.keylist, ['wan', 'wg0']);
  assert.notEqual(opt.trigger.validate('globals', '-bad'), true);

  assert.equal(peers.cls, 'GridSection');
  assert.equal(peers.addremove, true);
  const p = Object.fromEntries(peers.options.map((o) => [o.name, o]));
  assert.deepEqual(Object.keys(p), ['_peer', ...options.PEER.map((o) => o.name)]);
  assert.deepEqual(p._peer.vallist, ['Home server (wg0)', KEYS.office.slice(0, 8) + '… (wg0)']);
  assert.equal(p._peer.cfgvalue('p1'), 'wg0/' + KEYS.office);
  assert.notEqual(p._peer.validate('new', 'wg0/' + KEYS.office), true); // already has overrides
  assert.equal(p._peer.validate('p1', 'wg0/' + KEYS.office), true);
  uci.add('wg-endpointd', 'peer', 'p2');
  p._peer.write('p2', 'wg0/' + KEYS.home);
  assert.equal(uci.get('wg-endpointd', 'p2', 'interface'), 'wg0');
  assert.equal(uci.get('wg-endpointd', 'p2', 'public_key'), KEYS.home);
  assert.equal(p.probe_timeout.placeholder, '0.5'); // the global setting
  assert.equal(p.family.keylist[0], '');
  assert.notEqual(p.candidate.validate('p1', 'host:0'), true);
  assert.equal(p.candidate.validate('p1', '[2001:db8::10]:51820'), true);
  assert.notEqual(p.probe_address.validate('p1', '10.0.0'), true);
  assert.equal(p.probe_address.modalonly, true);
  assert.equal(p.managed.modalonly, false);
});

test('settings view: everyday settings on General, the tuning knobs on Advanced', async () => {
  const { form } = formStub();
  const uci = uciStore({ network: NETWORK, 'wg-endpointd': OWN });
  const view = new (load('view.wg-endpointd.settings', { view: luci({}).known.view, form, uci }, luci({}).env).constructor)();
  await view.load();
  const [globals, peers, groups] = view.render().sections;
  const onTab = (tab) => globals.options.filter((o) => o.tab === tab).map((o) => o.name);
  assert.deepEqual(onTab('general'), ['enabled', 'log_level', 'family', 'host_routes', 'interface']);
  assert.deepEqual(onTab('advanced'), ['probe_timeout', 'verify_timeout', 'check_interval', 'dead_after',
    'failback_hold', 'resolve_interval', 'backoff_max', 'metrics_file', 'hook_timeout', 'trigger']);
  // the grids keep their options untabbed
  assert.equal(peers.tabs, null);
  assert.equal(groups.tabs, null);
  assert.ok(peers.options.every((o) => o.tab === undefined));
});

test('settings view: creates the globals section when the file has none', async () => {
  const { form } = formStub();
  const uci = uciStore({ network: [], 'wg-endpointd': [] });
  const view = new (load('view.wg-endpointd.settings', { view: luci({}).known.view, form, uci }, luci({}).env).constructor)();
  view.render();
  assert.deepEqual(uci.sections('wg-endpointd', 'globals').map((s) => s['.name']), ['globals']);
});

test('settings view: standby groups grid, members chosen by name and checked', async () => {
  const { form } = formStub();
  const uci = uciStore({ network: NETWORK, 'wg-endpointd': [...OWN,
    { '.type': 'group', '.name': 'vpn', interface: 'wg0', peer: [KEYS.home] },
    { '.type': 'group', '.name': 'other', interface: 'wg0', peer: [KEYS.office] }] });
  const options = load('wg-endpointd.options');
  const view = new (load('view.wg-endpointd.settings', { view: luci({}).known.view, form, uci }, luci({}).env).constructor)();
  await view.load();
  const groups = view.render().sections[2];
  assert.equal(groups.cls, 'GridSection');
  assert.deepEqual(groups.args, ['group', 'Standby groups', groups.args[2]]);
  const g = Object.fromEntries(groups.options.map((o) => [o.name, o]));
  assert.deepEqual(Object.keys(g), ['interface', 'peer', ...options.GROUP.map((o) => o.name)]);
  assert.deepEqual(g.interface.keylist, ['wg0']);
  assert.deepEqual(g.peer.keylist, [KEYS.home, KEYS.office]); // keys, shown by name
  assert.deepEqual(g.peer.vallist, ['Home server (wg0)', KEYS.office.slice(0, 8) + '… (wg0)']);
  assert.equal(g.peer.validate('vpn', KEYS.home), true);
  assert.notEqual(g.peer.validate('vpn', KEYS.office), true); // in group "other"
  assert.notEqual(g.peer.validate('vpn', 'x'.repeat(43) + '='), true); // not a peer of wg0
  assert.equal(g.allowed_ips.cls, 'DynamicList');
  assert.equal(g.allowed_ips.validate('vpn', '0.0.0.0/0'), true);
  assert.equal(g.allowed_ips.validate('vpn', '2001:db8::/32'), true);
  assert.notEqual(g.allowed_ips.validate('vpn', '10.0.0.0/33'), true);
  assert.equal(g.failback_hold.placeholder, '300');
});
