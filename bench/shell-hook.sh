#!/bin/bash
# The baseline: a libvirt qemu hook as admins write it today, doing the same
# work as fdbhook's start path. For every bridged interface on br0 it pulls
# the MAC and the tap out of the domain XML (one xmlstarlet call for all
# interfaces, the cheapest form such scripts take), then turns learning and
# unicast flooding off on the tap and adds a static FDB entry for the MAC.
set -euo pipefail
op=$2 subop=$3
case "$op/$subop" in
start/begin | reconnect/begin | attach/begin) ;;
*) exit 0 ;;
esac
xml=$(cat)
while read -r mac tap; do
	[ -n "$tap" ] || continue
	bridge link set dev "$tap" learning off flood off
	bridge fdb replace "$mac" dev "$tap" master static
done < <(printf '%s\n' "$xml" | xmlstarlet sel -t \
	-m "/domain/devices/interface[@type='bridge'][source/@bridge='br0']" \
	-v mac/@address -o ' ' -v target/@dev -n)
