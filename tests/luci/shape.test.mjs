import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load, ROOT } from './luci.mjs';

const shape = load('wg-endpointd.shape');
const DATA = join(ROOT, 'tests', 'data', 'luci');
const fixture = (name) => JSON.parse(readFileSync(join(DATA, name + '.json'), 'utf8'));
const KEYS = fixture('keys');
const T = 1795303000;

// A status answer as the plugin builds it from a fixture state file.
function status(state, extra = {}) {
  return {
    running: true, pid: 4242, now: T, wg: 'ok', state,
    interfaces: [{ name: 'wg0', listen_port: 51820 }, { name: 'wg1', listen_port: 51821 }],
    live: [
      { interface: 'wg0', public_key: KEYS.home, endpoint: '[2001:db8:1::2]:51820',
        latest_handshake: T - 10, rx_bytes: 123456, tx_bytes: 654321, persistent_keepalive: 25 },
      { interface: 'wg0', public_key: KEYS.office, endpoint: '198.51.100.7:51820',
        latest_handshake: 0, rx_bytes: 0, tx_bytes: 148, persistent_keepalive: null },
    ],
    ...extra,
  };
}

const rows = (m) => m.interfaces.flatMap((i) => i.rows);

test('ago counts against the router clock', () => {
  assert.equal(shape.ago(T, T - 5), '5 s ago');
  assert.equal(shape.ago(T, T - 59.9), '59 s ago');
  assert.equal(shape.ago(T, T - 60), '1 min ago');
  assert.equal(shape.ago(T, T - 3599), '59 min ago');
  assert.equal(shape.ago(T, T - 7200), '2 h ago');
  assert.equal(shape.ago(T, T - 3 * 86400), '3 d ago');
  assert.equal(shape.ago(T, T + 30), 'just now');
  for (const never of [null, undefined, 0, -1, 'x', NaN]) assert.equal(shape.ago(T, never), 'never');
});

test('badge classes: danger for down, warning for fallback, success for healthy, neutral stays neutral', () => {
  assert.equal(shape.labelClass('down'), 'label danger');
  assert.equal(shape.labelClass('fallback'), 'label warning');
  assert.equal(shape.labelClass('healthy'), 'label success');
  assert.equal(shape.labelClass('unknown'), 'label notice');
  assert.equal(shape.labelClass('unmanaged'), 'label');
  for (const odd of ['weird', undefined, null, 'constructor', '__proto__', 'toString']) {
    assert.equal(shape.labelClass(odd), 'label notice', String(odd));
    assert.deepEqual(shape.badge(odd), { state: 'unknown', label: 'unknown', cls: 'label notice' });
  }
});

// Which colour variable each theme gives a <span class="label X">, read from
// openwrt/luci themes/<theme>/htdocs/luci-static/<name>/cascade.css (bootstrap
// as of its CSS-variable rework, openwrt2020 with .label.success, material),
// and which of the variables status.css falls back through each theme defines.
const THEMES = {
  bootstrap: {
    label: { '': '--background-color-low', important: '--primary-color-high', notice: '--primary-color-high',
             warning: '--warn-color-high', success: '--success-color-high' },
    defines: ['--error-color-high'], error: '--error-color-high' },
  openwrt2020: {
    label: { '': '--main-bright-color', warning: '--danger-color', success: '--success-color' },
    defines: ['--danger-color'], error: '--danger-color' },
  material: {
    label: { notice: '--notice-color', danger: '--danger-color', warning: '--warning-color',
             success: '--success-color' },
    defines: ['--danger-color'], error: '--danger-color' },
};
const STATUS_CSS = readFileSync(join(ROOT, 'openwrt', 'luci', 'luci-app-wg-endpointd', 'htdocs',
  'luci-static', 'resources', 'wg-endpointd', 'status.css'), 'utf8');

// The background a class attribute gets: the most specific .label[.X] rule
// that matches, the page's status.css (loaded after the theme) winning ties.
function background(theme, cls) {
  const classes = cls.split(/\s+/);
  if (classes[0] !== 'label') return null;
  let best = null;
  for (const [mod, colour] of Object.entries(theme.label))
    if (!mod || classes.includes(mod))
      if (!best || (mod ? 2 : 1) >= best.weight) best = { weight: mod ? 2 : 1, colour };
  for (const [, sel, body] of STATUS_CSS.matchAll(/^([^{}\n]+?)\s*\{([^}]*)\}/gm)) {
    const want = sel.trim().split('.').filter(Boolean);
    const decl = /background-color:\s*([^;]+);/.exec(body);
    if (!decl || !want.every((c) => classes.includes(c))) continue;
    const chain = decl[1].match(/--[\w-]+|#[0-9a-fA-F]{3,6}/g);
    const colour = chain.find((v) => !v.startsWith('--') || theme.defines.includes(v));
    if (!best || want.length >= best.weight) best = { weight: want.length, colour };
  }
  return best && best.colour;
}

test('in bootstrap, openwrt2020 and material a down peer is the theme\'s error colour, never a neutral one', () => {
  for (const [name, theme] of Object.entries(THEMES)) {
    const of = (state) => background(theme, shape.labelClass(state));
    assert.equal(of('down'), theme.error, name);
    assert.notEqual(of('down'), of('unknown'), name);
    assert.notEqual(of('down'), of('unmanaged'), name);
    assert.equal(of('healthy'), theme.label.success, name);
    assert.equal(of('fallback'), theme.label.warning, name);
  }
  // what the page looked like before: "important" is bootstrap's neutral blue
  assert.equal(background(THEMES.bootstrap, 'label important'), background(THEMES.bootstrap, 'label notice'));
});

test('bytes and rtt', () => {
  assert.equal(shape.bytes(188), '188 B');
  assert.equal(shape.bytes(1536), '1.50 KiB');
  assert.equal(shape.bytes(5000000), '4.77 MiB');
  assert.equal(shape.bytes(3 * 1024 ** 4), '3.00 TiB');
  assert.equal(shape.bytes(null), '-');
  assert.equal(shape.rtt(12.345), '12.3 ms');
  assert.equal(shape.rtt(null), 'no reply');
});

test('healthy: rows grouped by interface with endpoint, since, counters', () => {
  const m = shape.model(status(fixture('healthy')), {});
  assert.deepEqual(m.interfaces.map((i) => i.name), ['wg0', 'wg1']);
  const home = rows(m).find((r) => r.key === KEYS.home);
  assert.equal(home.name, 'Home server');
  assert.deepEqual(home.badge, { state: 'healthy', label: 'healthy', cls: 'label success' });
  assert.equal(home.endpoint, '[2001:db8:1::2]:51820');
  assert.equal(home.since, '1 h ago');
  assert.equal(home.verified, '20 s ago');
  assert.equal(home.handshake, '10 s ago');
  assert.equal(home.rx, '120.56 KiB');
  assert.deepEqual(home.candidates, [
    { endpoint: '[2001:db8:1::2]:51820', rtt: '12.3 ms', answered: true, active: true },
    { endpoint: '192.0.2.2:51820', rtt: '15.0 ms', answered: true, active: false },
  ]);
  const office = rows(m).find((r) => r.key === KEYS.office);
  assert.equal(office.name, KEYS.office.slice(0, 8) + '…'); // no description
  assert.equal(office.handshake, 'never');
  assert.equal(office.candidates[0].rtt, 'no reply');
  const vpn = rows(m).find((r) => r.key === KEYS['vpn-a']);
  assert.equal(vpn.rx, '-'); // no live counters for it
  assert.equal(m.empty, null);
  assert.equal(m.notice, null);
  assert.equal(m.lastRound, T - 5);
});

test('fallback shows the switch and marks the active candidate', () => {
  const m = shape.model(status(fixture('fallback'), { live: [] }), {});
  const home = rows(m).find((r) => r.key === KEYS.home);
  assert.equal(home.badge.state, 'fallback');
  assert.equal(home.badge.cls, 'label warning');
  assert.deepEqual(home.lastSwitch, {
    from: '[2001:db8:1::2]:51820', to: '192.0.2.2:51820',
    reason: 'no handshake within 2 s', when: '2 min ago',
  });
  assert.deepEqual(home.candidates.map((c) => c.active), [false, true]);
  assert.equal(home.handshake, 'unknown');
});

test('rows sort down first, then by name', () => {
  const m = shape.model(status(fixture('down')), {});
  const wg0 = m.interfaces.find((i) => i.name === 'wg0').rows;
  assert.deepEqual(wg0.map((r) => r.badge.state), ['down', 'healthy']);
  assert.equal(wg0[0].badge.cls, 'label danger');
  const two = { peers: [
    { interface: 'wg0', public_key: KEYS.office, description: 'b', phase: 'healthy' },
    { interface: 'wg0', public_key: KEYS.home, description: 'a', phase: 'healthy' },
  ] };
  assert.deepEqual(rows(shape.model(status(two), {})).map((r) => r.name), ['a', 'b']);
});

test('the state file of today (no added fields) still renders', () => {
  const m = shape.model(status(fixture('today')), {});
  const home = rows(m).find((r) => r.key === KEYS.home);
  assert.equal(home.badge.state, 'healthy');
  assert.equal(home.since, 'never');
  assert.equal(home.lastSwitch, null);
  assert.equal(m.lastRound, null);
  assert.deepEqual(m.groups, []);
});

test('peers only the network configuration knows are not managed', () => {
  const net = shape.network([
    { '.type': 'interface', '.name': 'wg0', proto: 'wireguard' },
    { '.type': 'interface', '.name': 'lan', proto: 'static' },
    { '.type': 'wireguard_wg0', '.name': 'cfg1', public_key: KEYS.home, endpoint_host: 'h' },
    { '.type': 'wireguard_wg0', '.name': 'cfg2', public_key: KEYS.passive, description: 'Laptop' },
    { '.type': 'wireguard_wg0', '.name': 'cfg3', public_key: KEYS.office, endpoint_host: 'o', disabled: '1' },
    { '.type': 'wireguard_wg0', '.name': 'cfg4', public_key: KEYS['vpn-b'], endpoint_host: 'v' },
    { '.type': 'wireguard_wg0', '.name': 'cfg5' },
  ], [
    { '.type': 'globals', '.name': 'globals', enabled: '1' },
    { '.type': 'peer', '.name': 'p1', interface: 'wg0', public_key: KEYS['vpn-b'], managed: '0' },
  ]);
  assert.deepEqual(net.interfaces, ['wg0']);
  assert.equal(net.peers.length, 4);
  assert.equal(net.enabled, true);
  const state = { peers: [{ interface: 'wg0', public_key: KEYS.home, phase: 'healthy' }] };
  const m = shape.model(status(state, { interfaces: [{ name: 'wg0', listen_port: 1 }] }), net);
  const byKey = Object.fromEntries(rows(m).map((r) => [r.key, r]));
  assert.equal(byKey[KEYS.home].badge.state, 'healthy');
  assert.equal(byKey[KEYS.passive].badge.state, 'unmanaged');
  assert.equal(byKey[KEYS.passive].name, 'Laptop');
  assert.match(byKey[KEYS.passive].reason, /passive/);
  assert.match(byKey[KEYS.office].reason, /disabled/);
  assert.match(byKey[KEYS['vpn-b']].reason, /opted out/);
  assert.deepEqual(rows(m).map((r) => r.badge.state), ['healthy', 'unmanaged', 'unmanaged', 'unmanaged']);
});

test('empty states', () => {
  const none = shape.model({ running: true, now: T, state: fixture('empty'), interfaces: [], live: [] }, {});
  assert.equal(none.empty, 'no-interface');
  const net = { interfaces: ['wg0'], peers: [] };
  const unmanaged = shape.model(status(fixture('empty')), net);
  assert.equal(unmanaged.empty, 'no-managed');
  const onlyPassive = shape.model(status(fixture('empty')), {
    interfaces: ['wg0'], peers: [{ interface: 'wg0', public_key: KEYS.passive }] });
  assert.equal(onlyPassive.empty, 'no-managed');
  assert.equal(rows(onlyPassive)[0].badge.state, 'unmanaged');
});

test('daemon not running, disabled, corrupt state, no answer at all', () => {
  const stopped = shape.model(status(fixture('healthy'), { running: false, pid: null }), {});
  assert.equal(stopped.notice, 'stopped');
  assert.equal(rows(stopped).length, 3); // the last known state stays visible
  assert.equal(shape.model(status(null, { running: false }), { enabled: false }).notice, 'disabled');
  const corrupt = shape.model(status(null, { state_error: 'corrupt' }),
    { interfaces: ['wg0'], peers: [{ interface: 'wg0', public_key: KEYS.home, endpoint_host: 'h' }] });
  assert.equal(corrupt.stateError, 'corrupt');
  assert.equal(rows(corrupt)[0].badge.state, 'unknown'); // not "not managed": nothing is known
  assert.equal(corrupt.empty, null);
  for (const junk of [undefined, null, 'x', 42, {}]) {
    const m = shape.model(junk, undefined);
    assert.equal(m.running, false);
    assert.equal(m.empty, 'no-interface');
  }
});

test('standby groups show the active member and each member\'s health', () => {
  const m = shape.model(status(fixture('healthy')), {});
  assert.equal(m.groups.length, 1);
  const g = m.groups[0];
  assert.equal(g.active, 'VPN A');
  assert.deepEqual(g.members, [
    { name: 'VPN A', health: 'alive', handshake: '12 s ago', active: true, badge: shape.badge('healthy') },
    { name: 'VPN B', health: 'dead', handshake: 'never', active: false, badge: shape.badge('down') },
  ]);
  assert.equal(g.lastFailover, null);
  const failed = fixture('healthy');
  failed.groups[0].active = KEYS['vpn-b'];
  failed.groups[0].last_failover = { from: KEYS['vpn-a'], to: KEYS['vpn-b'], reason: 'dead', at: T - 60 };
  failed.groups[0].members[1].health = 'weird';
  const g2 = shape.model(status(failed), {}).groups[0];
  assert.deepEqual(g2.lastFailover, { from: 'VPN A', to: 'VPN B', reason: 'dead', when: '1 min ago' });
  assert.equal(g2.members[1].health, 'unknown');
  assert.equal(g2.members[1].badge.cls, 'label notice');
  failed.groups[0].members[1].health = 'constructor'; // a name Object.prototype knows
  assert.equal(shape.model(status(failed), {}).groups[0].members[1].badge.state, 'unknown');
});

test('history: newest first, with when, reason and how long it took; odd items left out', () => {
  const m = shape.model(status(fixture('fallback'), { live: [] }), {});
  const home = rows(m).find((r) => r.key === KEYS.home);
  assert.deepEqual(home.history.map((h) => [h.action, h.from, h.to, h.reason, h.took, h.when]), [
    ['up', '[2001:db8:1::2]:51820', '192.0.2.2:51820', 'failover', '10.00 s', '2 min ago'],
    ['switch', '[2001:db8:1::2]:51820', '192.0.2.2:51820', 'failover', '0.52 s', '2 min ago'],
    ['down', '[2001:db8:1::2]:51820', '[2001:db8:1::2]:51820', 'unreachable', '', '2 min ago'],
    ['switch', '192.0.2.2:51820', '[2001:db8:1::2]:51820', 'failback', '0.31 s', '1 d ago'],
  ]);
  assert.deepEqual(rows(m).find((r) => r.key === KEYS.office).history, []);  // none in the file
  const odd = shape.historyOf([null, 7, { action: 'constructor', at: T }, { action: 'down', at: 'x' },
    { action: 'switch', at: T - 5, from: null, reason: 3, took: 'slow' }], T);
  assert.deepEqual(odd.map((h) => [h.action, h.when, h.from, h.to, h.reason, h.took]), [
    ['switch', '5 s ago', 'none', 'none', '', ''], ['down', 'never', 'none', 'none', '', '']]);
  assert.deepEqual(shape.historyOf('not a list', T), []);
});

test('a group\'s history names its members', () => {
  const state = fixture('healthy');
  state.groups[0].history = [{ at: T - 60, action: 'failover', from: KEYS['vpn-a'], to: KEYS['vpn-b'],
    reason: 'dead', took: 1.5 }];
  const [h] = shape.model(status(state), {}).groups[0].history;
  assert.deepEqual(h, { action: 'failover', when: '1 min ago', from: 'VPN A', to: 'VPN B',
    reason: 'dead', took: '1.50 s' });
});

test('check now: waiting, done with counts, timeout, stopped', () => {
  const woken = { result: 'woken', at: T - 2 };
  const before = fixture('down'); // last_round at T - 5: before the request
  assert.equal(shape.checkProgress(woken, status(before)).phase, 'waiting');
  const after = fixture('down');
  after.last_round = { at: T - 1, reason: 'interface event' };
  assert.deepEqual(shape.checkProgress(woken, status(after)), {
    phase: 'done', counts: { healthy: 2, fallback: 0, down: 1 }, when: '1 s ago' });
  assert.equal(shape.checkProgress(woken, status(before, { now: T + 40 })).phase, 'timeout');
  assert.equal(shape.checkProgress(woken, status(after, { running: false })).phase, 'stopped');
  assert.equal(shape.checkProgress(null, status(after)).phase, 'idle');
  assert.equal(shape.checkProgress({ result: 'not running' }, status(after)).phase, 'idle');
});
