'use strict';
'require baseclass';

/*
 * The options of /etc/config/wg-endpointd for the settings page, with the
 * help text of the shipped file, the daemon's defaults and validators that
 * accept what the daemon accepts (src/wg_endpointd/core/options.py, core/validate.py).
 * tests/test_luci.py compares this table with the shipped file and with the
 * daemon, so an option added there and missing here fails a test.
 */

var KEY = /^[A-Za-z0-9+\/]{42}[AEIMQUYcgkosw048]=$/;
var IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}$/;
var LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
var HOSTNAME = new RegExp('^' + LABEL + '(?:\\.' + LABEL + ')*\\.?$');
/* options.py: ASCII decimals, no sign or exponent, 0 < n <= 86400. */
var SECONDS = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/;
var MAX_SECONDS = 86400;
/* validate.looks_numeric: what inet_aton reads as a number. */
var NUMERIC_LABEL = /^(?:0[xX][0-9a-fA-F]*|[0-9]+)$/;

function positiveNumber(text) {
	text = String(text);
	return SECONDS.test(text) && +text > 0 && +text <= MAX_SECONDS;
}

function ifname(text) {
	return IFNAME.test(String(text));
}

function publicKey(text) {
	return KEY.test(String(text));
}

function ipv4(text) {
	var parts = text.split('.');
	return parts.length == 4 && parts.every(function(p) {
		return /^(?:0|[1-9]\d{0,2})$/.test(p) && +p <= 255;
	});
}

function ipv6(text) {
	var pct = text.indexOf('%');
	if (pct >= 0) {
		var scope = text.substring(pct + 1);
		if (!scope.length || /[%\/]/.test(scope))
			return false;
		text = text.substring(0, pct);
	}
	var halves = text.split('::');
	if (halves.length > 2)
		return false;
	var groups = [], v4 = false;
	for (var i = 0; i < halves.length; i++) {
		var parts = halves[i] == '' ? [] : halves[i].split(':');
		for (var j = 0; j < parts.length; j++) {
			var last = i == halves.length - 1 && j == parts.length - 1;
			if (last && parts[j].indexOf('.') >= 0) {
				if (!ipv4(parts[j]))
					return false;
				v4 = true;
			}
			else if (!/^[0-9A-Fa-f]{1,4}$/.test(parts[j]))
				return false;
		}
		groups.push(parts.length);
	}
	var n = groups.reduce(function(a, b) { return a + b; }, 0) + (v4 ? 1 : 0);
	return halves.length == 2 ? n <= 7 : n == 8;
}

/* validate.ip_literal: an IPv4 or IPv6 address, brackets allowed. */
function ipLiteral(text) {
	text = String(text);
	if (text.charAt(0) == '[' && text.charAt(text.length - 1) == ']')
		text = text.substring(1, text.length - 1);
	return text.indexOf(':') >= 0 ? ipv6(text) : ipv4(text);
}

function port(text) {
	return /^[0-9]+$/.test(text) && +text > 0 && +text < 65536;
}

/* validate.parse_hostport: host, host:port, [v6]:port or a bare IPv6. */
function hostPort(text) {
	text = String(text);
	var host = text;
	if (text.charAt(0) == '[') {
		var close = text.indexOf(']');
		if (close < 0)
			return false;
		host = text.substring(1, close);
		var rest = text.substring(close + 1);
		if (rest && (rest.charAt(0) != ':' || !port(rest.substring(1))))
			return false;
	}
	else if (text.split(':').length == 2) {
		host = text.split(':')[0];
		if (!port(text.split(':')[1]))
			return false;
	}
	return checkHost(host);
}

/* The eight 16-bit groups of a valid IPv6 literal without a zone. */
function ipv6Groups(text) {
	var m = text.match(/^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
	if (m)
		text = m[1] + (m[2] * 256 + +m[3]).toString(16) + ':' + (m[4] * 256 + +m[5]).toString(16);
	var halves = text.split('::');
	var head = halves[0] ? halves[0].split(':') : [];
	var tail = halves.length > 1 && halves[1] ? halves[1].split(':') : [];
	var fill = [];
	while (halves.length > 1 && head.length + fill.length + tail.length < 8)
		fill.push('0');
	return head.concat(fill, tail).map(function(g) { return parseInt(g, 16); });
}

/* validate.never_endpoint: an IPv4 literal that can never be a remote endpoint
 * (loopback, unspecified, multicast, limited broadcast, link-local). */
function neverV4(host) {
	var o = host.split('.').map(Number);
	return o[0] == 127 || host == '0.0.0.0' || (o[0] >= 224 && o[0] <= 239) ||
		host == '255.255.255.255' || (o[0] == 169 && o[1] == 254);
}

/* validate.check_host and never_endpoint: no zone, no IPv4-mapped, loopback,
 * unspecified, multicast or link-local address, and no name that the resolver
 * would read as a number (1, 0x7f.1, host.123). */
function checkHost(host) {
	if (host.indexOf('%') >= 0)
		return false;
	if (ipLiteral(host)) {
		if (host.indexOf(':') < 0)
			return !neverV4(host);
		var g = ipv6Groups(host);
		var zeros = g.slice(0, 7).every(function(x) { return x == 0; });
		var mapped = g.slice(0, 5).every(function(x) { return x == 0; }) && g[5] == 0xffff;
		return !mapped && !(zeros && g[7] <= 1) && (g[0] & 0xff00) != 0xff00 &&
			(g[0] & 0xffc0) != 0xfe80;
	}
	if (host.length > 253 || !HOSTNAME.test(host))
		return false;
	var labels = host.replace(/\.$/, '').split('.');
	return !(/^[0-9]+$/.test(labels[labels.length - 1]) ||
		labels.every(function(l) { return NUMERIC_LABEL.test(l); }));
}

/*
 * type: flag, choice, number, iflist (interface names), hosts (candidates),
 * address, path. default: the daemon's default, shown as placeholder
 * (placeholder: what to show where the default depends on the platform). help: the
 * comment above the option in the shipped file, except for a flag: the page
 * shows a checkbox, so its help says what ticking it does, not what 1 and 0
 * mean. tab: where the settings page puts a global option; the timers and
 * the wake-up list are for tuning and go to "advanced".
 */
var GLOBALS = [
	{ name: 'enabled', type: 'flag', default: '1', title: _('Enabled'), tab: 'general',
	  help: _('Run the daemon. Untick to stop it; these settings are kept.') },
	{ name: 'log_level', type: 'choice', default: 'info', title: _('Log level'), tab: 'general',
	  choices: [ 'debug', 'info', 'warning', 'error' ],
	  help: _('Log detail: debug, info, warning or error.') },
	{ name: 'family', type: 'choice', default: 'auto', title: _('Address family'), tab: 'general',
	  choices: [ 'auto', 'ipv6', 'ipv4' ],
	  help: _('Preferred address family: auto (IPv6 first, as RFC 6724), ipv6 or ipv4.') },
	{ name: 'probe_timeout', type: 'number', default: '1.0', title: _('Probe timeout'), tab: 'advanced',
	  help: _('How long to wait for ICMP echo replies; ICMP only ranks candidates.') },
	{ name: 'verify_timeout', type: 'number', default: '2.0', title: _('Verify timeout'), tab: 'advanced',
	  help: _('How long WireGuard gets to show a handshake or received bytes after a switch.') },
	{ name: 'check_interval', type: 'number', default: '10', title: _('Check interval'), tab: 'advanced',
	  help: _('Liveness check period for each peer (one small datagram into the tunnel).') },
	{ name: 'dead_after', type: 'number', default: '30', title: _('Dead after'), tab: 'advanced',
	  help: _('A peer with no sign of life for this long counts as dead and is moved.') },
	{ name: 'failback_hold', type: 'number', default: '300', title: _('Failback hold'), tab: 'advanced',
	  help: _('A preferred candidate must stay healthy this long before failing back to it.') },
	{ name: 'resolve_interval', type: 'number', default: '300', title: _('Resolve interval'), tab: 'advanced',
	  help: _('Re-resolve endpoint host names this often (and on every interface event).') },
	{ name: 'backoff_max', type: 'number', default: '300', title: _('Maximum backoff'), tab: 'advanced',
	  help: _('Longest wait between retries while no candidate works.') },
	{ name: 'host_routes', type: 'flag', default: '1', title: _('Host routes'), tab: 'general',
	  help: _('Give the endpoint in use of a full-tunnel peer a host route through the uplink, so that the tunnel does not carry its own packets. Unticked, the daemon adds no routes and removes its own.') },
	{ name: 'metrics_file', type: 'path', title: _('Metrics file'), tab: 'advanced',
	  placeholder: '/var/run/wg-endpointd/wg_endpointd.prom',
	  help: _('Prometheus metrics file, rewritten at least every check_interval; none writes none. Default: /var/run/wg-endpointd/wg_endpointd.prom on OpenWrt.') },
	{ name: 'hook_timeout', type: 'number', default: '30', title: _('Hook timeout'), tab: 'advanced',
	  help: _('How long a user hook may run before it is stopped (SIGTERM, then SIGKILL 2 s later).') },
	{ name: 'interface', type: 'iflist', wireguard: true, title: _('Interfaces'), tab: 'general',
	  help: _('WireGuard interfaces to manage; none listed means every proto \'wireguard\' interface.') },
	{ name: 'trigger', type: 'iflist', title: _('Trigger interfaces'), tab: 'advanced',
	  help: _('Interfaces whose hotplug events wake the daemon; none listed means all.') }
];

/* Per-peer overrides (config peer); interface and public_key come from the
 * peer chooser. Empty values inherit the global setting. */
var PEER = [
	{ name: 'managed', type: 'flag', default: '1', title: _('Managed'),
	  help: _('The daemon keeps this peer on a working endpoint. Untick to leave it alone.') },
	{ name: 'candidate', type: 'hosts', title: _('Backup hosts'),
	  help: _('Extra candidates sharing the peer\'s key: host, host:port or [ipv6]:port.') },
	{ name: 'family', type: 'choice', inherit: 'family', title: _('Address family'),
	  choices: [ 'auto', 'ipv6', 'ipv4' ],
	  help: _('Preferred family for this peer: auto, ipv6 or ipv4.') },
	{ name: 'probe_address', type: 'address', title: _('Probe address'),
	  help: _('Tunnel address to send liveness datagrams to (default: from allowed_ips).') },
	{ name: 'probe_timeout', type: 'number', inherit: 'probe_timeout', title: _('Probe timeout') },
	{ name: 'verify_timeout', type: 'number', inherit: 'verify_timeout', title: _('Verify timeout') }
];

/* Standby groups (config group); interface and the members (list peer) come
 * from choosers, not typed keys. */
var GROUP = [
	{ name: 'allowed_ips', type: 'prefixes', title: _('Moving allowed IPs'),
	  help: _('The allowed IPs that move to the active member (default: those all members share).') },
	{ name: 'failback_hold', type: 'number', inherit: 'failback_hold', title: _('Failback hold'),
	  help: _('The preferred member must handshake this long before it gets them back.') }
];

/* An allowed IP as Python's ip_network(strict=False) takes it: an address with
 * an optional prefix length in range (groupconf.normalise). */
function prefix(text) {
	var t = String(text), slash = t.indexOf('/'), addr = slash < 0 ? t : t.substring(0, slash);
	var v6 = addr.indexOf(':') >= 0;
	if (v6 ? (addr.indexOf('%') >= 0 || !ipv6(addr)) : !ipv4(addr))
		return false;
	if (slash < 0)
		return true;
	var len = t.substring(slash + 1);
	return /^[0-9]{1,3}$/.test(len) && +len <= (v6 ? 128 : 32);
}

/* The daemon reads booleans as netifd does, case-sensitive; a checkbox knows
 * '1' and '0'. Anything else is left as it is (the daemon reports it). */
function flagValue(value) {
	var v = String(value == null ? '' : value);
	if ([ '1', 'yes', 'on', 'true', 'enabled' ].indexOf(v) >= 0)
		return '1';
	if ([ '0', 'no', 'off', 'false', 'disabled' ].indexOf(v) >= 0)
		return '0';
	return value;
}

/* options.py, kind "path": an absolute file path, or none (empty: the option
 * is unset, and the daemon's default applies). */
function filePath(text) {
	text = String(text);
	return text == 'none' ||
		(text.charAt(0) == '/' && text.charAt(text.length - 1) != '/' && !/[\0\n]/.test(text));
}

/* One validator per type: true, or false for a value the daemon rejects. */
function valid(type, value) {
	switch (type) {
	case 'number': return positiveNumber(value);
	case 'path': return filePath(value);
	case 'iflist': return String(value).split(/\s+/).filter(Boolean).every(ifname);
	case 'hosts': return String(value).split(/\s+/).filter(Boolean).every(hostPort);
	case 'address': return ipLiteral(value);
	case 'prefixes': return String(value).split(/\s+/).filter(Boolean).every(prefix);
	default: return true;
	}
}

/* Peers of /etc/config/network as choices: "iface/key" -> label. peers:
 * [{ interface, public_key, description }]; keys that are no WireGuard
 * public key are left out, as the daemon skips them. */
function peerChoices(peers) {
	return (peers || []).filter(function(p) {
		return p && p.interface && publicKey(p.public_key || '');
	}).map(function(p) {
		return {
			value: p.interface + '/' + p.public_key,
			label: (p.description || p.public_key.substring(0, 8) + '…') + ' (' + p.interface + ')'
		};
	}).sort(function(a, b) { return a.label.localeCompare(b.label); });
}

return baseclass.extend({
	GLOBALS: GLOBALS,
	PEER: PEER,
	GROUP: GROUP,
	prefix: prefix,
	positiveNumber: positiveNumber,
	ifname: ifname,
	publicKey: publicKey,
	ipLiteral: ipLiteral,
	hostPort: hostPort,
	valid: valid,
	flagValue: flagValue,
	peerChoices: peerChoices
});
