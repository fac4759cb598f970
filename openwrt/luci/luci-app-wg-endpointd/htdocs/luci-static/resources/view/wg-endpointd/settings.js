'use strict';
'require view';
'require form';
'require uci';
'require wg-endpointd.shape as shape';
'require wg-endpointd.options as options';

var CONF = 'wg-endpointd';

var MESSAGES = {
	number: _('Expecting a number greater than 0 and below 10000000'),
	iflist: _('Expecting an interface name'),
	hosts: _('Expecting host, host:port or [IPv6]:port'),
	address: _('Expecting an IPv4 or IPv6 address'),
	prefixes: _('Expecting addresses with an optional prefix length, such as 0.0.0.0/0'),
	path: _('Expecting an absolute file path, such as /var/run/wg-endpointd/wg_endpointd.prom')
};

/* One form option from a row of the options table, on its tab when the
 * section has tabs. */
function addOption(s, spec, ctx, tab) {
	var help = spec.help, o;

	if (!help && spec.inherit)
		help = options.GLOBALS.filter(function(g) { return g.name == spec.inherit; })[0].help;

	function add(cls) {
		return tab ? s.taboption(tab, cls, spec.name, spec.title, help)
			: s.option(cls, spec.name, spec.title, help);
	}

	switch (spec.type) {
	case 'flag':
		o = add(form.Flag);
		o.default = spec.default;
		o.rmempty = false;
		o.cfgvalue = function(section_id) {
			return options.flagValue(uci.get(CONF, section_id, spec.name));
		};
		break;

	case 'choice':
		o = add(form.ListValue);
		if (spec.inherit)
			o.value('', _('as in the settings (%s)').format(ctx.global(spec.inherit)));
		spec.choices.forEach(function(c) { o.value(c); });
		o.default = spec.default || '';
		break;

	case 'iflist':
	case 'hosts':
	case 'prefixes':
		o = add(form.DynamicList);
		(spec.type == 'iflist' ? (spec.wireguard ? ctx.wg : ctx.all) : []).forEach(function(n) {
			o.value(n);
		});
		break;

	default:
		o = add(form.Value);
		o.placeholder = spec.inherit ? ctx.global(spec.inherit) : (spec.default || spec.placeholder || '');
	}

	if (MESSAGES[spec.type])
		o.validate = function(section_id, value) {
			if (value == null || value === '')
				return true;
			if (!options.valid(spec.type, value))
				return MESSAGES[spec.type];
			if (spec.wireguard && ctx.wg.indexOf(value) < 0)
				return _('Not a WireGuard interface');
			return true;
		};

	return o;
}

return view.extend({
	load: function() {
		return Promise.all([ uci.load('network'), uci.load(CONF) ]);
	},

	render: function() {
		var net = shape.network(uci.sections('network'), uci.sections(CONF));
		var ctx = {
			wg: net.interfaces,
			all: uci.sections('network', 'interface').map(function(s) { return s['.name']; }),
			global: function(name) {
				var spec = options.GLOBALS.filter(function(g) { return g.name == name; })[0];
				return uci.get(CONF, 'globals', name) || spec.default;
			}
		};
		var m, s, o;

		if (!uci.get(CONF, 'globals'))
			uci.add(CONF, 'globals', 'globals');

		m = new form.Map(CONF, _('WireGuard Endpoints'),
			_('Settings of wg-endpointd. Times are in seconds. Save & Apply reloads the daemon.'));

		/* Everyday settings first, the tuning knobs on a tab of their own, as
		 * luci-app-banip's view/banip/overview.js does for its NamedSection:
		 * s.tab('general', ...), s.tab('advanced', ...), then s.taboption(). */
		s = m.section(form.NamedSection, 'globals', 'globals', _('Settings'));
		s.tab('general', _('General Settings'));
		s.tab('advanced', _('Advanced Settings'),
			_('Timers and wake-ups. The defaults suit most routers.'));
		options.GLOBALS.forEach(function(spec) { addOption(s, spec, ctx, spec.tab); });

		s = m.section(form.GridSection, 'peer', _('Peer overrides'),
			_('Per-peer settings. Peers come from the WireGuard interfaces in the network configuration.'));
		s.anonymous = true;
		s.addremove = true;
		s.nodescriptions = true;

		o = s.option(form.ListValue, '_peer', _('Peer'));
		options.peerChoices(net.peers).forEach(function(c) { o.value(c.value, c.label); });
		uci.sections(CONF, 'peer').forEach(function(p) {
			var v = p.interface + '/' + p.public_key;
			if (p.interface && p.public_key && o.keylist.indexOf(v) < 0)
				o.value(v, _('%s (%s, not in the network configuration)').format(
					shape.shortKey(p.public_key), p.interface));
		});
		o.rmempty = false;
		o.cfgvalue = function(section_id) {
			var i = uci.get(CONF, section_id, 'interface'), k = uci.get(CONF, section_id, 'public_key');
			return (i && k) ? i + '/' + k : null;
		};
		o.validate = function(section_id, value) {
			var clash = uci.sections(CONF, 'peer').some(function(p) {
				return p['.name'] != section_id && p.interface + '/' + p.public_key == value;
			});
			return clash ? _('This peer already has overrides') : true;
		};
		o.write = function(section_id, value) {
			var cut = value.indexOf('/');
			uci.set(CONF, section_id, 'interface', value.substring(0, cut));
			uci.set(CONF, section_id, 'public_key', value.substring(cut + 1));
		};
		o.remove = function() {};

		options.PEER.forEach(function(spec) {
			o = addOption(s, spec, ctx);
			o.modalonly = [ 'managed', 'candidate', 'family' ].indexOf(spec.name) < 0;
		});

		s = m.section(form.GridSection, 'group', _('Standby groups'),
			_('Peers of one interface with their own keys, preferred first: exactly one of them holds the group\'s allowed IPs, and they move to the first standby that works when it fails.'));
		s.addremove = true;
		s.nodescriptions = true;

		o = s.option(form.ListValue, 'interface', _('Interface'));
		ctx.wg.forEach(function(n) { o.value(n); });
		o.rmempty = false;

		o = s.option(form.DynamicList, 'peer', _('Members'),
			_('Preferred first. Each must be a peer of the group\'s interface, in one group only.'));
		options.peerChoices(net.peers).forEach(function(c) {
			o.value(c.value.substring(c.value.indexOf('/') + 1), c.label);
		});
		o.rmempty = false;
		o.validate = function(section_id, value) {
			var iface = uci.get(CONF, section_id, 'interface');
			var mine = (net.peers || []).some(function(p) {
				return p.public_key == value && (!iface || p.interface == iface);
			});
			if (value && !mine)
				return _('Not a peer of this interface');
			var elsewhere = uci.sections(CONF, 'group').some(function(g) {
				return g['.name'] != section_id && [].concat(g.peer || []).indexOf(value) >= 0;
			});
			return elsewhere ? _('Already a member of another group') : true;
		};

		options.GROUP.forEach(function(spec) { addOption(s, spec, ctx); });

		return m.render();
	}
});
