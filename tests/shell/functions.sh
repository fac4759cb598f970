# shellcheck shell=sh
# shellcheck disable=SC1090,SC2013 # sources package scripts by path and splits file lists into words, as upstream does
# Test stand-in for /lib/functions.sh, imitating default_postinst,
# default_prerm and add_group_and_user of openwrt/openwrt
# package/base-files/files/lib/functions.sh for a package that needs no
# users, alternatives, kernel modules or sysctl files. Like there, the file
# list is lib/apk/packages/<pkg>.list (apk) or usr/lib/opkg/info/<pkg>.list
# (opkg), <pkg>.postinst-pkg/.prerm-pkg from opkg's info directory are
# sourced in a subshell, uci-defaults run on a live system only, and init
# scripts are enabled (image build) or enabled and started (live; not
# enabled again on upgrades). Every call is logged to ${IPKG_INSTROOT}/stub.log.

stub_log() {
	echo "$*" >>"${IPKG_INSTROOT}/stub.log"
}

stub_filelist() {
	stub_list="${IPKG_INSTROOT}/usr/lib/opkg/info/$1.list"
	[ -f "${IPKG_INSTROOT}/lib/apk/packages/$1.list" ] &&
		stub_list="${IPKG_INSTROOT}/lib/apk/packages/$1.list"
	echo "$stub_list"
}

add_group_and_user() {
	[ -n "$pkgname" ] || pkgname=$(basename "${1%.*}")
	stub_log "add_group_and_user $pkgname"
}

default_postinst() {
	[ -n "$pkgname" ] || pkgname=$(basename "${1%.*}")
	stub_log "default_postinst $pkgname upgrade=${PKG_UPGRADE:-0} root=${IPKG_INSTROOT}"
	stub_ret=0
	stub_files=$(stub_filelist "$pkgname")
	if [ -z "${IPKG_INSTROOT}" ]; then
		for i in $(grep -s "^/etc/uci-defaults/" "$stub_files"); do
			( [ -f "$i" ] && cd "$(dirname "$i")" && . "$i" ) && rm -f "$i"
		done
		uci commit
	fi
	if [ -f "${IPKG_INSTROOT}/usr/lib/opkg/info/${pkgname}.postinst-pkg" ]; then
		( . "${IPKG_INSTROOT}/usr/lib/opkg/info/${pkgname}.postinst-pkg" )
		stub_ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$stub_files"); do
		if [ -n "${IPKG_INSTROOT}" ]; then
			/bin/sh "${IPKG_INSTROOT}/etc/rc.common" "${IPKG_INSTROOT}$i" enable
		else
			[ "$PKG_UPGRADE" = "1" ] || "$i" enable
			"$i" start
		fi
	done
	return $stub_ret
}

default_prerm() {
	[ -n "$pkgname" ] || pkgname=$(basename "${1%.*}")
	stub_log "default_prerm $pkgname upgrade=${PKG_UPGRADE:-0} root=${IPKG_INSTROOT}"
	stub_ret=0
	stub_files=$(stub_filelist "$pkgname")
	if [ -f "${IPKG_INSTROOT}/usr/lib/opkg/info/${pkgname}.prerm-pkg" ]; then
		( . "${IPKG_INSTROOT}/usr/lib/opkg/info/${pkgname}.prerm-pkg" )
		stub_ret=$?
	fi
	for i in $(grep -s "^/etc/init.d/" "$stub_files"); do
		if [ -n "${IPKG_INSTROOT}" ]; then
			/bin/sh "${IPKG_INSTROOT}/etc/rc.common" "${IPKG_INSTROOT}$i" disable
		else
			[ "$PKG_UPGRADE" = "1" ] || "$i" disable
			"$i" stop
		fi
	done
	return $stub_ret
}
