// Package plan decides, for one hook event, what fdbhook does to the kernel:
// which guest ports get learning and unicast flooding turned off and a static
// FDB entry (and, where configured, the locked flag, sticky entries, entries
// for extra MACs and the NIC's VLANs), which NICs are skipped and why, which are refused, and what a
// guest's stop leaves to clean up. It is pure: it sees the kernel only
// through the read-only View interface, so it is tested from fixtures and
// printed by a dry run. Package apply carries the plan out, through
// package kernel, which sends one message per step and decides nothing.
package plan
