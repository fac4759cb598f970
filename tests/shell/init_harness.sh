# shellcheck shell=sh
# Runs one function of the init script off the router, procd and UCI stubbed.
#
#   busybox sh init_harness.sh INIT_SCRIPT RUN_DIR FUNCTION [ARGS...]
#
# Every stubbed call is appended to $STUB_LOG as one line: the name and its
# arguments, separated by tabs. The fake UCI store:
#   FAKE_UCI     shell assignments applied over the schema defaults
#                (e.g. "enabled=0"), as /sbin/validate_data would print them
#   FAKE_UCI_RC  the validation result (default 0)

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

procd_open_instance() { rec procd_open_instance "$@"; }
procd_set_param() { rec procd_set_param "$@"; }
procd_append_param() { rec procd_append_param "$@"; }
procd_close_instance() { rec procd_close_instance "$@"; }
procd_add_reload_trigger() { rec procd_add_reload_trigger "$@"; }
procd_add_interface_trigger() { rec procd_add_interface_trigger "$@"; }
procd_send_signal() { rec procd_send_signal "$@"; }
procd_running() { rec procd_running "$@"; return 1; }
logger() { rec logger "$@"; }
config_load() { rec config_load "$@"; }

# Like procd.sh: run the validator with no section, which describes the schema.
procd_add_validation() {
	rec procd_add_validation "$@"
	"$@"
}

# Like /lib/functions/procd.sh: set every option (default, then the fake
# store), then call back with the section name and the validation result.
uci_load_validate() {
	ulv_package=$1 ulv_type=$2 ulv_name=$3 ulv_callback=$4
	shift 4
	rec uci_load_validate "$ulv_package" "$ulv_type" "$ulv_name" "$ulv_callback" "$@"
	# shellcheck disable=SC2034 # ulv_default is read through eval
	for ulv_spec in "$@"; do
		ulv_option=${ulv_spec%%:*}
		ulv_rest=${ulv_spec#*:}
		case "$ulv_rest" in
		*:*) ulv_default=${ulv_rest#*:} ;;
		*) ulv_default= ;;
		esac
		eval "$ulv_option=\"\$ulv_default\""
	done
	[ -z "$FAKE_UCI" ] || eval "$FAKE_UCI"
	ulv_rc=${FAKE_UCI_RC:-0}
	[ -n "$ulv_callback" ] || return "$ulv_rc"
	"$ulv_callback" "$ulv_name" "$ulv_rc"
}

# rc.common's start: build the service from start_service.
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
"$@"
