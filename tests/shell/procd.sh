# shellcheck shell=sh
# Test stand-in for /lib/functions/procd.sh, sourced by the hotplug script.
# Appends each call, one line, to $WG_ENDPOINTD_TEST_LOG.

# shellcheck disable=SC2154 # set by the hotplug script before it sources us
printf 'sourced initscript=%s\n' "$initscript" >>"$WG_ENDPOINTD_TEST_LOG"

procd_send_signal() {
	printf 'procd_send_signal %s\n' "$*" >>"$WG_ENDPOINTD_TEST_LOG"
}
