# shellcheck shell=sh
# Runs one function of the init script off the router, procd and UCI stubbed.
#
#   busybox sh init_harness.sh INIT_SCRIPT RUN_DIR FUNCTION [ARGS...]
#
# Every stubbed call is appended to $STUB_LOG as one line: the name and its
# arguments, separated by tabs. HARNESS_PROG, when set, replaces $PROG (the
# daemon's command, which the init script runs for `config --check` and hands
# procd). With STUB_SYSLOG set, logger calls also go through tests/shell/logger
# (busybox logger's stand-in), which appends them to that file as logread
# shows them.

case "$0" in
*/*) harness_dir=${0%/*} ;;
*) harness_dir=. ;;
esac

rec() {
	{
		printf '%s' "$1"
		shift
		for rec_arg in "$@"; do
			printf '\t%s' "$rec_arg"
		done
		printf '\n'
	} >>"$STUB_LOG"
}

# procd_* as in package/base-files/files/lib/functions/procd.sh (openwrt/openwrt):
# they build the message for procd; here they only record the calls.
procd_open_instance() { rec procd_open_instance "$@"; }
procd_set_param() { rec procd_set_param "$@"; }
procd_append_param() { rec procd_append_param "$@"; }
procd_close_instance() { rec procd_close_instance "$@"; }
procd_add_reload_trigger() { rec procd_add_reload_trigger "$@"; }
procd_add_interface_trigger() { rec procd_add_interface_trigger "$@"; }
procd_send_signal() { rec procd_send_signal "$@"; }
procd_running() { rec procd_running "$@"; return 1; }
logger() {
	rec logger "$@"
	[ -z "$STUB_SYSLOG" ] || "$harness_dir/logger" "$@"
}

# Like /etc/rc.common with USE_PROCD (rc_procd): start runs start_service in
# the same shell, so variables that reload_service set are still there.
start() {
	rec start "$@"
	start_service "$@"
}

harness_script=$1
harness_run_dir=$2
shift 2
# shellcheck disable=SC1090 # the init script under test is an argument
. "$harness_script"
# shellcheck disable=SC2034 # read by the init script's functions
RUN_DIR=$harness_run_dir
# shellcheck disable=SC2034 # read by the init script's functions
[ -z "$HARNESS_PROG" ] || PROG=$HARNESS_PROG
# shellcheck disable=SC2034 # read by the init script's functions
HOTPLUG=${harness_script%/init.d/*}/hotplug.d/iface/20-wg-endpointd
"$@"
