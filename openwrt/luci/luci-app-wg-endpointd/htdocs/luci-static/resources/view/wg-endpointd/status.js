'use strict';
'require view';
'require rpc';
'require poll';
'require uci';
'require ui';
'require dom';
'require wg-endpointd.shape as shape';

var callStatus = rpc.declare({
	object: 'wg-endpointd',
	method: 'status',
	expect: { '': {} }
});

var callCheck = rpc.declare({
	object: 'wg-endpointd',
	method: 'check',
	params: [ 'start' ],
	expect: { '': {} }
});

function badge(b) {
	return E('span', { 'class': b.cls }, [ b.label ]);
}

/* Which history lists are unfolded, by peer or group, so that the poll's
 * redraw keeps them as the user left them. */
var unfolded = {};

/* The last events, folded away until asked for. */
function history(id, items) {
	if (!items.length)
		return '';
	return E('details', {
		'class': 'wg-endpointd-history',
		'open': unfolded[id] ? '' : null,
		'toggle': function(ev) { unfolded[id] = ev.target.open; }
	}, [
		E('summary', [ _('History (%d)').format(items.length) ]),
		E('ul', items.map(function(h) {
			return E('li', [
				E('strong', [ h.action ]), ' ', h.from, ' → ', h.to, ' ',
				E('small', [ h.reason, h.took ? ', ' + h.took : '', ', ', h.when ])
			]);
		}))
	]);
}

function cell(title, content) {
	return E('td', { 'class': 'td', 'data-title': title }, content);
}

function peerRow(r) {
	return E('tr', { 'class': 'tr' }, [
		cell(_('Peer'), [
			E('strong', [ r.name ]), E('br'),
			E('code', { 'title': r.key }, [ r.shortKey ])
		]),
		cell(_('State'), [ badge(r.badge), r.reason ? E('div', [ E('small', [ r.reason ]) ]) : '' ]),
		cell(_('Endpoint'), r.managed ? [
			E('code', [ r.endpoint || '-' ]), E('br'),
			E('small', [ _('since %s').format(r.since) ])
		] : [ E('code', [ r.endpoint || '-' ]) ]),
		cell(_('Verified / handshake'), [ r.verified, E('br'), r.handshake ]),
		cell(_('Received / sent'), [ r.rx, E('br'), r.tx ]),
		cell(_('Candidates'), r.candidates.map(function(c) {
			return E('div', [
				c.active ? E('strong', [ '▸ ', c.endpoint ]) : E('span', [ c.endpoint ]),
				' ', E('small', [ c.rtt ])
			]);
		})),
		cell(_('Last switch'), (r.lastSwitch ? [
			E('code', [ r.lastSwitch.from ]), ' → ', E('code', [ r.lastSwitch.to ]), E('br'),
			E('small', [ r.lastSwitch.reason, ', ', r.lastSwitch.when ])
		] : [ E('em', [ _('none') ]) ]).concat(history(r.interface + ' ' + r.key, r.history)))
	]);
}

function table(titles, rows) {
	return E('table', { 'class': 'table cbi-section-table' }, [
		E('tr', { 'class': 'tr table-titles' }, titles.map(function(t) {
			return E('th', { 'class': 'th' }, [ t ]);
		}))
	].concat(rows));
}

function groupRow(g) {
	return E('tr', { 'class': 'tr' }, [
		cell(_('Group'), [ E('strong', [ g.name ]) ]),
		cell(_('Interface'), [ g.interface ]),
		cell(_('Active member'), [ g.active ]),
		cell(_('Members'), g.members.map(function(m) {
			return E('div', [ m.active ? E('strong', [ m.name ]) : m.name, ' ',
				badge(m.badge),
				' ', E('small', [ m.handshake ]) ]);
		})),
		cell(_('Last failover'), (g.lastFailover ? [
			g.lastFailover.from, ' → ', g.lastFailover.to, E('br'),
			E('small', [ g.lastFailover.reason, ', ', g.lastFailover.when ])
		] : [ E('em', [ _('none') ]) ]).concat(history('group ' + g.name, g.history)))
	]);
}

function message(kind, text, extra) {
	return E('div', { 'class': 'alert-message ' + kind }, [ E('p', [ text ]) ].concat(extra || []));
}

return view.extend({
	pending: null,

	load: function() {
		return Promise.all([
			L.resolveDefault(callStatus(), {}),
			uci.load('network'),
			uci.load('wg-endpointd')
		]);
	},

	handleCheck: function(start) {
		return callCheck(start).then(L.bind(function(res) {
			this.pending = res;
			if (res.result == 'failed' || res.error)
				ui.addNotification(null, E('p', [ _('Check failed: %s').format(res.error || '?') ]), 'error');
			return this.refresh();
		}, this));
	},

	progress: function(status) {
		var p = shape.checkProgress(this.pending, status);
		switch (p.phase) {
		case 'waiting': return _('Checking…');
		case 'timeout': return _('The daemon was woken; it has not reported a finished round yet.');
		case 'stopped': return _('The daemon stopped.');
		case 'done': return shape.fmt(_('Round finished %s: %d healthy, %d fallback, %d down.'),
			p.when, p.counts.healthy, p.counts.fallback, p.counts.down);
		}
		return '';
	},

	renderStatus: function(status) {
		var m = shape.model(status, this.net);
		var body = [];

		if (m.notice == 'disabled')
			body.push(message('warning', _('The daemon is disabled in the settings (Enabled is off).')));
		else if (m.notice == 'stopped')
			body.push(message('warning', _('The wg-endpointd daemon is not running.'), [
				E('button', {
					'class': 'btn cbi-button cbi-button-apply',
					'click': ui.createHandlerFn(this, 'handleCheck', true)
				}, [ _('Start the service') ])
			]));
		else
			body.push(E('div', { 'class': 'cbi-section' }, [
				E('button', {
					'class': 'btn cbi-button cbi-button-action',
					'click': ui.createHandlerFn(this, 'handleCheck', false)
				}, [ _('Check now') ]),
				' ', E('span', [ this.progress(status) ])
			]));

		if (m.stateError == 'corrupt')
			body.push(message('notice', _('The state file is unreadable; the daemon rewrites it after its next round.')));
		if (m.wg == 'missing')
			body.push(message('notice', _('The wg program is missing: no live counters.')));

		if (m.empty == 'no-interface')
			body.push(E('p', { 'class': 'center' }, [ E('em', [ _('No WireGuard interface is configured.') ]) ]));
		else if (m.empty == 'no-managed')
			body.push(E('p', { 'class': 'center' }, [ E('em', [ _('No peer is managed: give a peer an endpoint host, or check the Settings tab.') ]) ]));

		m.interfaces.forEach(function(i) {
			if (!i.rows.length)
				return;
			body.push(E('h3', [ _('Interface %s').format(i.name) ]),
				table([ _('Peer'), _('State'), _('Endpoint'), _('Verified / handshake'),
					_('Received / sent'), _('Candidates'), _('Last switch') ], i.rows.map(peerRow)));
		});

		if (m.groups.length)
			body.push(E('h3', [ _('Standby groups') ]),
				table([ _('Group'), _('Interface'), _('Active member'), _('Members'), _('Last failover') ],
					m.groups.map(groupRow)));

		return E('div', body);
	},

	refresh: function() {
		return L.resolveDefault(callStatus(), {}).then(L.bind(function(status) {
			dom.content(document.querySelector('#wg-endpointd-status'), this.renderStatus(status));
		}, this));
	},

	render: function(data) {
		/* The colour of the "down" badge where the theme has none (see the
		 * file); a page's stylesheet as luci-app-mwan3's status/overview.js
		 * adds view/mwan3/mwan3.css. */
		document.querySelector('head').appendChild(E('link', {
			'rel': 'stylesheet',
			'type': 'text/css',
			'href': L.resource('wg-endpointd/status.css')
		}));
		this.net = shape.network(uci.sections('network'), uci.sections('wg-endpointd'));
		poll.add(L.bind(this.refresh, this), 5);

		return E([], [
			E('h2', [ _('WireGuard Endpoints') ]),
			E('div', { 'class': 'cbi-map-descr' }, [
				_('Keeps every managed WireGuard peer on an endpoint that WireGuard itself has been seen to reach.')
			]),
			E('div', { 'id': 'wg-endpointd-status' }, [ this.renderStatus(data[0]) ])
		]);
	},

	handleSaveApply: null,
	handleSave: null,
	handleReset: null
});
