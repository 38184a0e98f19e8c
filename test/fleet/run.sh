#!/usr/bin/env bash
# make fleet: fdbhook in a fleet's monitoring and configuration management.
#   1. the alert rules: promtool check rules, promtool test rules;
#   2. the metrics: the e2e scenario TestFleetMetrics (real libvirtd guest,
#      fdbhook metrics --textfile, Debian's node_exporter and Prometheus,
#      the alert firing in Prometheus' rule evaluation);
#   3. the Ansible role against this machine (test/fleet/ansible.sh).
# Needs root, bin/ (make build) and dist/ (make packages). Each part that
# touches the host holds /run/fdbhook-test.lock itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
log() { echo "fleet: $*" >&2; }

[ "$(id -u)" -eq 0 ] || {
	log "must run as root (packages, libvirtd, dpkg)"
	exit 1
}
# Installing touches dpkg, which other suites use: only then take the lock.
if ! dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q 'install ok installed'; then
	(
		exec 9>/run/fdbhook-test.lock
		flock -w 3000 9 || exit 1
		test/deps.sh prometheus
	) || {
		log "could not install prometheus (promtool)"
		exit 1
	}
fi

rc=0
log "alert rules"
(cd packaging/prometheus && promtool check rules fdbhook.rules.yml && promtool test rules fdbhook.rules.test.yml) || rc=1

log "metrics against node_exporter, Prometheus and a libvirtd guest"
test/e2e/run.sh -run 'TestFleetMetrics' || rc=1

log "Ansible role"
test/fleet/ansible.sh || rc=1

[ "$rc" -eq 0 ] && log "all passed" || log "FAILED"
exit "$rc"
