#!/usr/bin/env bash
# apt-locked.sh COMMAND ARGS...: runs COMMAND holding /run/fdbhook-apt.lock,
# the lock every apt-get and dpkg call of the project's tests takes (see
# test/deps.sh), waiting for it up to 30 minutes. The lock is held by
# flock itself (-o), not by COMMAND's descriptors, so a daemon a package
# starts does not keep it. COMMAND sees FDBHOOK_APT_LOCKED=1.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: apt-locked.sh COMMAND ARGS..." >&2; exit 2; }
exec env FDBHOOK_APT_LOCKED=1 flock -o -w 1800 -E 75 /run/fdbhook-apt.lock "$@"
