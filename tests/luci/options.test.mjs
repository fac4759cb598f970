import test from 'node:test';
import assert from 'node:assert/strict';
import { load } from './luci.mjs';

const options = load('wg-endpointd.options');
const KEY = 'TqFAWIFQdzzjqs54au739ASc4QD6ZJyU+73blg8dqUI=';

test('seconds as options.py reads them: ASCII decimals, 0 < n <= 86400', () => {
  for (const ok of ['1', '1.0', '.5', '5.', '2.5', '86400'])
    assert.equal(options.positiveNumber(ok), true, ok);
  for (const bad of ['0', '-1', '', 'abc', ' 2.5 ', '+3', '1e3', '1_000', '86401', 'inf', 'nan',
    '0x10', '1,5', '\uff15'])
    assert.equal(options.positiveNumber(bad), false, bad);
});

test('interface names', () => {
  for (const ok of ['wg0', 'wan', 'lan_1', 'eth0.2', 'a@b', '123456789012345'])
    assert.equal(options.ifname(ok), true, ok);
  for (const bad of ['', '-wg', 'wg 0', '1234567890123456', 'wg/0'])
    assert.equal(options.ifname(bad), false, bad);
});

test('IP literals', () => {
  for (const ok of ['192.0.2.1', '0.0.0.0', '2001:db8::1', '::', '::1', '[2001:db8::1]',
    '::ffff:192.0.2.1', 'fe80::1%eth0', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::'])
    assert.equal(options.ipLiteral(ok), true, ok);
  for (const bad of ['192.0.2', '192.0.2.256', '01.2.3.4', '1:2:3:4:5:6:7:8:9', '1::2::3',
    ':1::2', '1::2:', 'fe80::1%', 'example.com', '[::1', '12345::1', '1:2:3:4:5:6:7:8::'])
    assert.equal(options.ipLiteral(bad), false, bad);
});

test('candidates: host, host:port, [v6]:port or a bare IPv6', () => {
  for (const ok of ['backup.example.net', 'backup.example.net:51821', '192.0.2.1:1',
    '[2001:db8::10]:51820', '2001:db8::10', '[2001:db8::10]', 'vpn.example.', 'a_b.example'])
    assert.equal(options.hostPort(ok), true, ok);
  for (const bad of ['host:0', 'host:65536', 'host:x', '[2001:db8::10', '[::1]x', '[::1]:',
    '-bad.example', 'bad-.example', 'a..b', '', 'ex ample', '1', '0x7f.1', 'host.123',
    '::ffff:192.0.2.1', '[fe80::1%eth0]:5', 'fe80::1', 'host:\uff15'])
    assert.equal(options.hostPort(bad), false, bad);
});

test('valid() splits list items on whitespace as the daemon does', () => {
  assert.equal(options.valid('hosts', 'a.example b.example:1'), true);
  assert.equal(options.valid('hosts', 'a.example b.example:0'), false);
  assert.equal(options.valid('iflist', 'wan wan6'), true);
  assert.equal(options.valid('iflist', 'wan -x'), false);
  assert.equal(options.valid('address', '[::1]'), true);
  assert.equal(options.valid('number', '0'), false);
  assert.equal(options.valid('flag', 'anything'), true);
});

test('peer choices show description and interface, never need a typed key', () => {
  const choices = options.peerChoices([
    { interface: 'wg0', public_key: KEY, description: 'Home' },
    { interface: 'wg1', public_key: KEY },
    { interface: 'wg0', public_key: 'not a key' },
    { interface: 'wg0' },
  ]);
  assert.deepEqual(choices, [
    { value: 'wg0/' + KEY, label: 'Home (wg0)' },
    { value: 'wg1/' + KEY, label: 'TqFAWIFQ… (wg1)' },
  ]);
});

test('every option has a known type, and choices where it needs them', () => {
  for (const spec of [...options.GLOBALS, ...options.PEER]) {
    assert.ok(['flag', 'choice', 'number', 'iflist', 'hosts', 'address', 'path'].includes(spec.type), spec.name);
    assert.ok(spec.title, spec.name);
    if (spec.type === 'choice') assert.ok(spec.choices.length > 1, spec.name);
    if (spec.inherit) assert.ok(options.GLOBALS.some((g) => g.name === spec.inherit), spec.name);
  }
});

test('flag values: the daemon\'s booleans become 1 and 0, the rest stays', () => {
  for (const v of ['1', 'yes', 'on', 'true', 'enabled']) assert.equal(options.flagValue(v), '1', v);
  for (const v of ['0', 'no', 'off', 'false', 'disabled']) assert.equal(options.flagValue(v), '0', v);
  // case-sensitive, as netifd and the daemon: the daemon reports these, the page keeps them
  for (const v of ['maybe', 'On', 'TRUE', 'OFF', 'Disabled']) assert.equal(options.flagValue(v), v);
  assert.equal(options.flagValue(undefined), undefined);
});

test('global options sit on the General or the Advanced tab; every timer is advanced', () => {
  for (const spec of options.GLOBALS)
    assert.ok(['general', 'advanced'].includes(spec.tab), spec.name);
  const advanced = options.GLOBALS.filter((g) => g.tab === 'advanced').map((g) => g.name);
  assert.deepEqual(advanced, ['probe_timeout', 'verify_timeout', 'check_interval', 'dead_after',
    'failback_hold', 'resolve_interval', 'backoff_max', 'metrics_file', 'hook_timeout', 'trigger']);
  for (const spec of options.GLOBALS.filter((g) => g.type === 'number'))
    assert.equal(spec.tab, 'advanced', spec.name);
  for (const spec of [...options.PEER, ...options.GROUP])
    assert.equal(spec.tab, undefined, spec.name); // their grids have no tabs
});

test('a checkbox\'s help says what ticking it does, never what 1 or 0 mean', () => {
  const flags = [...options.GLOBALS, ...options.PEER].filter((s) => s.type === 'flag');
  assert.deepEqual(flags.map((s) => s.name), ['enabled', 'host_routes', 'managed']);
  for (const spec of flags) {
    assert.doesNotMatch(spec.help, /(^|[^\w.])[01](?![\w.])/, spec.name);
    assert.match(spec.help, /\bUntick/, spec.name);
  }
});

test('a metrics file is an absolute file path or none, as options.py checks it', () => {
  for (const ok of ['/var/run/wg-endpointd/wg_endpointd.prom', '/tmp/x.prom', 'none'])
    assert.equal(options.valid('path', ok), true, ok);
  for (const bad of ['wg_endpointd.prom', './x.prom', '/var/lib/prometheus/node-exporter/', 'a\nb', 'None'])
    assert.equal(options.valid('path', bad), false, bad);
});
