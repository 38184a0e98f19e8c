#!/usr/bin/env bash
# The Ansible role (packaging/ansible/roles/fdbhook) with Debian's own
# ansible, connection local, against this machine: the first run installs
# the .deb from dist/ and writes the configuration, the second changes
# nothing, and a bad variable (an unknown bridge option) fails the play
# with fdbhook's own error and leaves the configuration as it was.
#
# Installing a package touches the host: holds /run/fdbhook-test.lock (a
# caller that holds it sets FDBHOOK_TEST_LOCK_HELD=1), and puts the host
# back: the package is purged, the configuration restored, the test bridge
# deleted. Prints "ansible: N passed, M failed"; exit 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH="/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin"
export DEBIAN_FRONTEND=noninteractive ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0

log() { echo "ansible: $*" >&2; }
die() {
	log "$*"
	exit 1
}
# shellcheck source=test/checks.sh
. "$ROOT/test/checks.sh"

[ "$(id -u)" -eq 0 ] || die "must run as root (dpkg, /etc/fdbhook)"
deb=$(ls "$ROOT"/dist/fdbhook_*.deb 2>/dev/null | head -n 1) || true
[ -f "$deb" ] || die "no dist/fdbhook_*.deb: run 'make packages' first"

if [ "${FDBHOOK_TEST_LOCK_HELD:-}" != 1 ]; then
	exec 9>/run/fdbhook-test.lock
	log "waiting for /run/fdbhook-test.lock"
	flock -w 3000 9 || die "/run/fdbhook-test.lock still held after 50 min"
fi
test/deps.sh ansible python3-apt iproute2

# An admin's package stays; one an interrupted run left is purged.
"$PWD"/test/package-leftover.sh check ansible || exit 1
"$PWD"/test/package-leftover.sh mark ansible

CONFIG=/etc/fdbhook/fdbhook.toml
work=$(mktemp -d /tmp/fdbt-ansible.XXXXXX)
BR=fdbtfl0
config_saved=
cleanup() {
	local rc=$?
	set +e
	if dpkg -P fdbhook >"$work/purge.log" 2>&1; then
		"$PWD"/test/package-leftover.sh clear
	else
		cat "$work/purge.log" >&2
	fi
	rm -f /var/cache/fdbhook-"$(basename "$deb")"
	if [ -n "$config_saved" ]; then
		mkdir -p /etc/fdbhook
		cp -a "$work/config.orig" "$CONFIG"
	fi
	rmdir /etc/fdbhook 2>/dev/null
	ip link del "$BR" 2>/dev/null
	rm -rf "$work"
	echo "ansible: $passed passed, $failed failed"
	[ "$failed" -eq 0 ] || rc=1
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if [ -e "$CONFIG" ]; then
	cp -a "$CONFIG" "$work/config.orig"
	config_saved=1
	rm -f "$CONFIG" # the package's conffile would otherwise prompt
fi

# doctor fails on a configured bridge that does not exist.
ip link add "$BR" type bridge
ip link set "$BR" up

cat >"$work/inventory.ini" <<INV
localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3
INV
cat >"$work/play.yml" <<PLAY
- name: fdbhook test play
  hosts: localhost
  gather_facts: true
  roles:
    - fdbhook
PLAY
good_vars() {
	cat <<VARS
fdbhook_package_file: $deb
fdbhook_bridges: [$BR]
fdbhook_networks: [fdbtnet]
fdbhook_on_error: warn
fdbhook_bridge_options:
  $BR: {lock_ports: true, sticky: false}
VARS
}
good_vars >"$work/good.yml"
{
	good_vars | sed "s/{lock_ports: true, sticky: false}/{lock_ports: true, vlan_filter: enable}/"
} >"$work/bad.yml"
grep -q vlan_filter "$work/bad.yml" || die "could not write the bad variables"

play() { # play NAME VARSFILE: runs the play, output in $work/NAME.out
	local rc=0
	# The role installs a package: under the tests' apt lock (test/deps.sh).
	ANSIBLE_ROLES_PATH=$ROOT/packaging/ansible/roles "$ROOT/test/apt-locked.sh" ansible-playbook -i "$work/inventory.ini" \
		-e "@$2" "$work/play.yml" >"$work/$1.out" 2>&1 || rc=$?
	return $rc
}
recap() { grep -E '^localhost +:' "$work/$1.out" | tr -s ' '; }

echo "== first run: installs and configures"
if play first "$work/good.yml"; then
	pass "first run succeeds ($(recap first))"
else
	fail "first run succeeds" "$(tail -n 30 "$work/first.out")"
fi
if dpkg-query -W -f='${Status}' fdbhook 2>/dev/null | grep -q 'install ok installed'; then
	pass "the package is installed: $(dpkg-query -W -f='${Version}' fdbhook)"
else
	fail "the package is installed"
fi
want=$(
	cat <<TOML
# Ansible managed
bridges   = ["$BR"]
networks  = ["fdbtnet"]
on_error  = "warn"
log_level = "info"

[bridge.$BR]
lock_ports = true
sticky = false
TOML
)
got=$(cat "$CONFIG" 2>/dev/null || true)
if [ "$got" = "$want" ]; then
	pass "$CONFIG holds the variables"
else
	fail "$CONFIG holds the variables" "$(diff <(echo "$want") <(echo "$got"))"
fi
if FDBHOOK_CONFIG=$CONFIG /usr/sbin/fdbhook status "$BR" >"$work/status.out" 2>&1 || [ $? = 1 ]; then
	pass "the installed fdbhook reads it (status exit 0 or 1)"
else
	fail "the installed fdbhook reads it" "$(cat "$work/status.out")"
fi
if grep -q 'RUNNING HANDLER \[fdbhook : Reconcile running guests\]' "$work/first.out"; then
	pass "fdbhook reconcile ran once"
else
	fail "fdbhook reconcile ran once" "$(grep -A3 HANDLER "$work/first.out")"
fi
case $(recap first) in
*" changed=0 "*) fail "first run reports changes" "$(recap first)" ;;
*) pass "first run reports changes" ;;
esac

echo "== second run: nothing changes"
if play second "$work/good.yml"; then
	pass "second run succeeds"
else
	fail "second run succeeds" "$(tail -n 30 "$work/second.out")"
fi
case $(recap second) in
*" changed=0 "*" failed=0 "*) pass "second run: changed=0 ($(recap second))" ;;
*) fail "second run: changed=0" "$(recap second); $(grep -B1 '^changed:' "$work/second.out")" ;;
esac
if grep -q 'RUNNING HANDLER' "$work/second.out"; then
	fail "second run: no reconcile" "$(grep -A3 HANDLER "$work/second.out")"
else
	pass "second run: no reconcile"
fi

echo "== bad variable: an unknown bridge option"
before=$(sha256sum "$CONFIG" | cut -d' ' -f1)
if play bad "$work/bad.yml"; then
	fail "the play fails" "$(tail -n 30 "$work/bad.out")"
else
	pass "the play fails"
fi
msg=$(grep -F '"msg":' "$work/bad.out" || true)
if grep -qF "unknown key bridge.$BR.vlan_filter" <<<"$msg" && [ "$(grep -c . <<<"$msg")" = 1 ]; then
	pass "with fdbhook's own one-line error: $(sed 's/^ *//' <<<"$msg")"
else
	fail "with fdbhook's own one-line error" "$(grep -A5 'fatal' "$work/bad.out")"
fi
if [ "$(sha256sum "$CONFIG" | cut -d' ' -f1)" = "$before" ]; then
	pass "$CONFIG is unchanged"
else
	fail "$CONFIG is unchanged" "$(cat "$CONFIG")"
fi
left=$(find /etc/fdbhook -name '*.candidate')
if [ -z "$left" ]; then
	pass "no candidate file left in /etc/fdbhook"
else
	fail "no candidate file left in /etc/fdbhook" "$left"
fi
