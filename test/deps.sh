#!/usr/bin/env bash
# Installs the named Debian packages when any is missing. apt-get update runs
# only when something must be installed, so a warm machine pays nothing.
#
# Two test runs side by side on a fresh machine both install packages:
# apt-get waits for dpkg's lock (DPkg::Lock::Timeout) but fails at once on
# the lock of its lists during apt-get update. So the installing part runs
# under /run/fdbhook-apt.lock (flock -o: a daemon a package starts does
# not keep it), and looks again for what is missing once it has the lock:
# the other run may have installed it meanwhile. The project's other apt
# and dpkg calls take the same lock (test/apt-locked.sh).
set -euo pipefail
missing=()
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${FDBHOOK_APT_LOCKED:-}" != 1 ]; then
	exec "$(dirname "$0")/apt-locked.sh" "$0" "$@"
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
