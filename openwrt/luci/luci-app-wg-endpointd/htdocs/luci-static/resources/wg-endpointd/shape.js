'use strict';
'require baseclass';

/*
 * Data shaping for the status page: plain functions from the answer of
 * "ubus call wg-endpointd status" (see docs/state-file.md) and the peers in
 * /etc/config/network to rows, badges and "x s ago" texts. No DOM, no RPC:
 * the node tests load this file the way LuCI does.
 */

var ORDER = { down: 0, fallback: 1, unknown: 2, healthy: 3, unmanaged: 4 };

function fmt(text /*, ... */) {
	var args = Array.prototype.slice.call(arguments, 1);
	return String(text).replace(/%[ds]/g, function() { return String(args.shift()); });
}

function isNum(v) {
	return typeof(v) == 'number' && isFinite(v);
}

/* "x s ago" against the router's clock; null, 0 and missing are "never". */
function ago(now, t) {
	if (!isNum(t) || t <= 0)
		return _('never');

	var d = Math.floor(now - t);

	if (!isNum(now) || d < 0)
		return _('just now');
	if (d < 60)
		return fmt(_('%d s ago'), d);
	if (d < 3600)
		return fmt(_('%d min ago'), Math.floor(d / 60));
	if (d < 86400)
		return fmt(_('%d h ago'), Math.floor(d / 3600));
	return fmt(_('%d d ago'), Math.floor(d / 86400));
}

function bytes(n) {
	if (!isNum(n) || n < 0)
		return '-';

	var units = [ 'B', 'KiB', 'MiB', 'GiB', 'TiB' ], i = 0;

	while (n >= 1024 && i < units.length - 1) {
		n /= 1024;
		i++;
	}
	return i ? n.toFixed(2) + ' ' + units[i] : n + ' B';
}

function rtt(ms) {
	return isNum(ms) ? ms.toFixed(1) + ' ms' : _('no reply');
}

function shortKey(key) {
	return String(key || '').substring(0, 8) + '…';
}

/*
 * The class attribute of a state's badge. LuCI's themes colour a
 * <span class="label X"> by X and differ in which X they know (openwrt/luci
 * themes/<theme>/htdocs/luci-static/<name>/cascade.css):
 *   luci-theme-bootstrap: .label grey, .label.success green, .label.warning
 *     yellow, .label.notice and .label.important the primary blue; no red
 *     label at all (.label.important was red until the theme moved to colour
 *     variables: that is how "down" came to wear the neutral blue);
 *   luci-theme-openwrt-2020: .label blue, .label.success green,
 *     .label.warning red (its --danger-color);
 *   luci-theme-material: .label.notice, .label.danger, .label.warning,
 *     .label.success.
 * "danger" is the name LuCI's themes give to failure (.alert-message.danger
 * in all three, .label.danger in material; luci-app-mwan3's status/overview.js
 * shows an offline interface as alert-message danger, an online one as
 * success). wg-endpointd/status.css paints .label.danger with the theme's own
 * error colour where the theme has no rule for it. Neutral states keep the
 * theme's neutral label.
 */
var LABEL_CLASS = {
	healthy: 'label success',
	fallback: 'label warning',
	down: 'label danger',
	unknown: 'label notice',
	unmanaged: 'label'
};

function own(table, key) {
	return Object.prototype.hasOwnProperty.call(table, key);
}

function labelClass(state) {
	return own(LABEL_CLASS, state) ? LABEL_CLASS[state] : LABEL_CLASS.unknown;
}

/* state -> label text and class attribute. */
function badge(state) {
	var labels = {
		healthy: _('healthy'),
		fallback: _('fallback'),
		down: _('down'),
		unmanaged: _('not managed'),
		unknown: _('unknown')
	};
	var s = own(labels, state) ? state : 'unknown';
	return { state: s, label: labels[s], cls: labelClass(s) };
}

/* A standby group member's health as a badge state. */
var HEALTH = { alive: 'healthy', dead: 'down' };

var TRUE = [ '1', 'on', 'true', 'yes', 'enabled' ];

/*
 * What the page needs from UCI. network: every section of /etc/config/network
 * and own: every section of /etc/config/wg-endpointd, as uci.sections()
 * returns them (objects with '.type' and '.name').
 */
function network(netSections, ownSections) {
	var all = netSections || [], own = ownSections || [];
	var ifaces = all.filter(function(s) {
		return s['.type'] == 'interface' && s.proto == 'wireguard';
	}).map(function(s) { return s['.name']; });
	var optedOut = {};
	var globals = own.filter(function(s) { return s['.type'] == 'globals'; })[0] || {};

	own.forEach(function(s) {
		if (s['.type'] == 'peer' && s.managed != null && TRUE.indexOf(String(s.managed).toLowerCase()) < 0)
			optedOut[s.interface + ' ' + s.public_key] = true;
	});

	var peers = [];
	ifaces.forEach(function(i) {
		all.forEach(function(s) {
			if (s['.type'] != 'wireguard_' + i || !s.public_key)
				return;
			peers.push({
				interface: i,
				public_key: s.public_key,
				description: s.description || '',
				endpoint_host: s.endpoint_host || '',
				disabled: TRUE.indexOf(s.disabled) >= 0,
				optedOut: !!optedOut[i + ' ' + s.public_key]
			});
		});
	});

	return {
		interfaces: ifaces,
		peers: peers,
		enabled: globals.enabled == null || TRUE.indexOf(String(globals.enabled).toLowerCase()) >= 0
	};
}

function sameEndpoint(a, b) {
	return a != null && b != null && String(a).toLowerCase() == String(b).toLowerCase();
}

function switchOf(sw, now) {
	if (!sw || typeof(sw) != 'object')
		return null;
	return {
		from: sw.from || _('none'),
		to: sw.to || _('none'),
		reason: sw.reason || '',
		when: ago(now, sw.at)
	};
}

var ACTIONS = {
	'switch': _('switch'),
	failover: _('failover'),
	failback: _('failback'),
	down: _('down'),
	up: _('up')
};

/* A state file history (oldest first, docs/state-file.md) as the page lists
 * it: newest first. names: public key -> name, for a group's members. */
function historyOf(items, now, names) {
	names = names || {};
	return (Array.isArray(items) ? items : []).filter(function(h) {
		return h && typeof(h) == 'object' && own(ACTIONS, h.action);
	}).reverse().map(function(h) {
		function end(x) {
			return x ? (own(names, x) ? names[x] : String(x)) : _('none');
		}
		return {
			action: ACTIONS[h.action],
			when: ago(now, h.at),
			from: end(h.from),
			to: end(h.to),
			reason: typeof(h.reason) == 'string' ? h.reason : '',
			took: isNum(h.took) ? h.took.toFixed(2) + ' s' : ''
		};
	});
}

function liveIndex(status) {
	var idx = {};
	(Array.isArray(status.live) ? status.live : []).forEach(function(l) {
		if (l && l.interface && l.public_key)
			idx[l.interface + ' ' + l.public_key] = l;
	});
	return idx;
}

/* One row of the status table. peer: a state file peer (or a stand-in
 * built from /etc/config/network), live: its "wg show" counters or null. */
function row(peer, live, now, stateKnown) {
	var managed = peer.managed !== false;
	var phase = !stateKnown ? 'unknown' : (managed ? peer.phase : 'unmanaged');
	var endpoint = (live && live.endpoint) || peer.endpoint || null;
	var cands = Array.isArray(peer.candidates) ? peer.candidates : [];

	return {
		interface: peer.interface,
		key: peer.public_key,
		shortKey: shortKey(peer.public_key),
		name: peer.description || shortKey(peer.public_key),
		badge: badge(phase),
		managed: managed,
		reason: peer.reason || '',
		endpoint: endpoint,
		since: ago(now, peer.endpoint_since),
		verified: ago(now, peer.last_verified),
		handshake: live ? ago(now, live.latest_handshake) : _('unknown'),
		rx: live ? bytes(live.rx_bytes) : '-',
		tx: live ? bytes(live.tx_bytes) : '-',
		candidates: cands.filter(function(c) { return c && c.endpoint; }).map(function(c) {
			return {
				endpoint: c.endpoint,
				rtt: rtt(c.rtt_ms),
				answered: isNum(c.rtt_ms),
				active: sameEndpoint(c.endpoint, endpoint)
			};
		}),
		lastSwitch: switchOf(peer.last_switch, now),
		history: historyOf(peer.history, now)
	};
}

function byStateThenName(a, b) {
	return (ORDER[a.badge.state] - ORDER[b.badge.state]) ||
		a.name.localeCompare(b.name) || a.key.localeCompare(b.key);
}

/* Why a peer that only /etc/config/network knows is not in the state. */
function networkReason(p) {
	if (p.disabled)
		return _('disabled in the network configuration');
	if (!p.endpoint_host)
		return _('passive: no endpoint host');
	if (p.optedOut)
		return _('opted out in the settings');
	return '';
}

function groupOf(g, now) {
	var members = Array.isArray(g.members) ? g.members : [];
	var nameOf = {};

	members.forEach(function(m) {
		nameOf[m.public_key] = m.description || shortKey(m.public_key);
	});

	var lf = g.last_failover;

	return {
		name: g.name || '',
		interface: g.interface || '',
		active: g.active ? (nameOf[g.active] || shortKey(g.active)) : _('none'),
		members: members.map(function(m) {
			return {
				name: nameOf[m.public_key],
				health: own(HEALTH, m.health) ? m.health : 'unknown',
				badge: badge(own(HEALTH, m.health) ? HEALTH[m.health] : 'unknown'),
				handshake: ago(now, m.latest_handshake),
				active: m.public_key == g.active
			};
		}),
		lastFailover: lf ? {
			from: lf.from ? (nameOf[lf.from] || shortKey(lf.from)) : _('none'),
			to: lf.to ? (nameOf[lf.to] || shortKey(lf.to)) : _('none'),
			reason: lf.reason || '',
			when: ago(now, lf.at)
		} : null,
		history: historyOf(g.history, now, nameOf)
	};
}

/*
 * The whole page. status: the plugin's answer. network: { interfaces:
 * [names of proto wireguard interfaces], peers: [{ interface, public_key,
 * description, endpoint_host, disabled, optedOut }], enabled: bool }.
 */
function model(status, network) {
	status = (status && typeof(status) == 'object') ? status : {};
	network = network || {};

	var now = isNum(status.now) ? status.now : Math.floor(Date.now() / 1000);
	var state = (status.state && typeof(status.state) == 'object') ? status.state : null;
	var peers = (state && Array.isArray(state.peers)) ? state.peers : [];
	var live = liveIndex(status);
	var seen = {}, byIface = {}, names = {};

	(network.interfaces || []).forEach(function(n) { names[n] = true; });
	(Array.isArray(status.interfaces) ? status.interfaces : []).forEach(function(i) {
		if (i && i.name)
			names[i.name] = true;
	});

	peers.forEach(function(p) {
		if (!p || !p.interface || !p.public_key)
			return;
		var id = p.interface + ' ' + p.public_key;
		seen[id] = true;
		names[p.interface] = true;
		(byIface[p.interface] = byIface[p.interface] || []).push(
			row(p, live[id] || null, now, state != null));
	});

	(network.peers || []).forEach(function(p) {
		var id = p.interface + ' ' + p.public_key;
		if (seen[id] || !p.public_key || !names[p.interface])
			return;
		seen[id] = true;
		var stand = {
			interface: p.interface,
			public_key: p.public_key,
			description: p.description,
			managed: false,
			reason: networkReason(p)
		};
		(byIface[p.interface] = byIface[p.interface] || []).push(
			row(stand, live[id] || null, now, state != null));
	});

	var interfaces = Object.keys(names).sort().map(function(n) {
		return { name: n, rows: (byIface[n] || []).sort(byStateThenName) };
	});
	var managed = interfaces.some(function(i) {
		return i.rows.some(function(r) { return r.managed; });
	});

	return {
		now: now,
		running: status.running === true,
		notice: status.running === true ? null
			: (network.enabled === false ? 'disabled' : 'stopped'),
		stateError: status.state_error || null,
		wg: status.wg || 'unknown',
		interfaces: interfaces,
		groups: (state && Array.isArray(state.groups) ? state.groups : []).map(function(g) {
			return groupOf(g, now);
		}),
		empty: !interfaces.length ? 'no-interface' : (!managed && state ? 'no-managed' : null),
		lastRound: state && state.last_round && isNum(state.last_round.at) ? state.last_round.at : null
	};
}

/* How far a "Check now" got: pending is the plugin's answer to check. */
function checkProgress(pending, status, limit) {
	if (!pending || pending.result != 'woken')
		return { phase: 'idle' };

	var m = model(status, {});
	var counts = { healthy: 0, fallback: 0, down: 0 };

	if (!m.running)
		return { phase: 'stopped' };
	if (m.lastRound != null && m.lastRound >= pending.at) {
		m.interfaces.forEach(function(i) {
			i.rows.forEach(function(r) {
				if (r.badge.state in counts)
					counts[r.badge.state]++;
			});
		});
		return { phase: 'done', counts: counts, when: ago(m.now, m.lastRound) };
	}
	if (m.now - pending.at > (limit || 30))
		return { phase: 'timeout' };
	return { phase: 'waiting' };
}

return baseclass.extend({
	fmt: fmt,
	ago: ago,
	bytes: bytes,
	rtt: rtt,
	shortKey: shortKey,
	labelClass: labelClass,
	badge: badge,
	network: network,
	row: row,
	historyOf: historyOf,
	model: model,
	checkProgress: checkProgress
});
