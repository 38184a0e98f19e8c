// Package kernel is the only code that talks to the kernel. It reads links,
// bridge port flags (learning, unicast_flood, locked), port VLANs and FDB
// entries for package plan, and writes port flags, port VLANs, FDB entries
// (sticky ones too) and bridge VLAN filtering for package apply, over one
// rtnetlink socket per run whose calls are bounded by a timeout.
package kernel
