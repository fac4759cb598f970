'use strict';
'require baseclass';

/*
 * The options of /etc/config/wg-endpointd for the settings page, with the
 * help text of the shipped file, the daemon's defaults and validators that
 * accept what the daemon accepts (src/wg_endpointd/config.py, validate.py).
 * tests/test_luci.py compares this table with the shipped file and with the
 * daemon, so an option added there and missing here fails a test.
 */

var KEY = /^[A-Za-z0-9+\/]{42}[AEIMQUYcgkosw048]=$/;
var IFNAME = /^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,14}$/;
var LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?';
var HOSTNAME = new RegExp('^' + LABEL + '(?:\\.' + LABEL + ')*\\.?$');
var DIGITS = '\\d(?:_?\\d)*';
var FLOAT = new RegExp('^\\s*[+-]?(?:' + DIGITS + '(?:\\.(?:' + DIGITS + ')?)?|\\.' + DIGITS +
	')(?:[eE][+-]?' + DIGITS + ')?\\s*$');

/* Python's int() and float() read any Unicode decimal digit (Nd); digits
 * come in runs of ten from 0 to 9, so a digit's value is its distance from
 * the start of its run, modulo 10. Browsers without \p{} keep the text. */
function asciiDigits(text) {
	var nd;
	try { nd = new RegExp('\\p{Nd}', 'u'); } catch (e) { return text; }
	return Array.from(text).map(function(ch) {
		if (/[0-9]/.test(ch) || !nd.test(ch))
			return ch;
		var cp = ch.codePointAt(0), start = cp;
		while (nd.test(String.fromCodePoint(start - 1)))
			start--;
		return String((cp - start) % 10);
	}).join('');
}

/* Python's float() grammar, then the daemon's range 0 < n < 1e7. */
function positiveNumber(text) {
	text = asciiDigits(String(text));
	if (!FLOAT.test(text))
		return false;
	var n = Number(text.trim().replace(/_/g, ''));
	return n > 0 && n < 1e7;
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
	text = asciiDigits(text);
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
	if (ipLiteral(host))
		return true;
	return host.length <= 253 && HOSTNAME.test(host);
}

/*
 * type: flag, choice, number, iflist (interface names), hosts (candidates),
 * address. default: the daemon's default, shown as placeholder.
 */
var GLOBALS = [
	{ name: 'enabled', type: 'flag', default: '1', title: _('Enabled'),
	  help: _('1 runs the daemon, 0 keeps it stopped.') },
	{ name: 'log_level', type: 'choice', default: 'info', title: _('Log level'),
	  choices: [ 'debug', 'info', 'warning', 'error' ],
	  help: _('Log detail: debug, info, warning or error.') },
	{ name: 'family', type: 'choice', default: 'auto', title: _('Address family'),
	  choices: [ 'auto', 'ipv6', 'ipv4' ],
	  help: _('Preferred address family: auto (IPv6 first, as RFC 6724), ipv6 or ipv4.') },
	{ name: 'probe_timeout', type: 'number', default: '1.0', title: _('Probe timeout'),
	  help: _('How long to wait for ICMP echo replies; ICMP only ranks candidates.') },
	{ name: 'verify_timeout', type: 'number', default: '2.0', title: _('Verify timeout'),
	  help: _('How long WireGuard gets to show a handshake or received bytes after a switch.') },
	{ name: 'check_interval', type: 'number', default: '10', title: _('Check interval'),
	  help: _('Liveness check period for each peer (one small datagram into the tunnel).') },
	{ name: 'dead_after', type: 'number', default: '30', title: _('Dead after'),
	  help: _('A peer with no sign of life for this long counts as dead and is moved.') },
	{ name: 'failback_hold', type: 'number', default: '300', title: _('Failback hold'),
	  help: _('A preferred candidate must stay healthy this long before failing back to it.') },
	{ name: 'resolve_interval', type: 'number', default: '300', title: _('Resolve interval'),
	  help: _('Re-resolve endpoint host names this often (and on every interface event).') },
	{ name: 'backoff_max', type: 'number', default: '300', title: _('Maximum backoff'),
	  help: _('Longest wait between retries while no candidate works.') },
	{ name: 'host_routes', type: 'flag', default: '1', title: _('Host routes'),
	  help: _('1 adds host routes for new endpoints of full-tunnel peers, 0 leaves routes alone.') },
	{ name: 'interface', type: 'iflist', wireguard: true, title: _('Interfaces'),
	  help: _('WireGuard interfaces to manage; none listed means every proto \'wireguard\' interface.') },
	{ name: 'trigger', type: 'iflist', title: _('Trigger interfaces'),
	  help: _('Interfaces whose hotplug events wake the daemon; none listed means all.') }
];

/* Per-peer overrides (config peer); interface and public_key come from the
 * peer chooser. Empty values inherit the global setting. */
var PEER = [
	{ name: 'managed', type: 'flag', default: '1', title: _('Managed'),
	  help: _('0 leaves this peer alone.') },
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

/* The daemon reads booleans case-insensitively; a checkbox knows '1' and '0'.
 * Anything else is left as it is, so that saving cannot flip it. */
function flagValue(value) {
	var v = String(value == null ? '' : value).toLowerCase();
	if ([ '1', 'yes', 'on', 'true', 'enabled' ].indexOf(v) >= 0)
		return '1';
	if ([ '0', 'no', 'off', 'false', 'disabled' ].indexOf(v) >= 0)
		return '0';
	return value;
}

/* One validator per type: true, or false for a value the daemon rejects. */
function valid(type, value) {
	switch (type) {
	case 'number': return positiveNumber(value);
	case 'iflist': return String(value).split(/\s+/).filter(Boolean).every(ifname);
	case 'hosts': return String(value).split(/\s+/).filter(Boolean).every(hostPort);
	case 'address': return ipLiteral(value);
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
	positiveNumber: positiveNumber,
	ifname: ifname,
	publicKey: publicKey,
	ipLiteral: ipLiteral,
	hostPort: hostPort,
	valid: valid,
	flagValue: flagValue,
	peerChoices: peerChoices
});
