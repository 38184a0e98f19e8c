// Package plan decides, for one hook event, every change fdbhook makes to
// the kernel, as a list of steps:
//
//   - Start: which guest ports get learning and unicast flooding turned
//     off and a static FDB entry, and, where configured, the locked flag,
//     sticky entries, entries for extra MACs and the NIC's VLANs; which
//     NICs are skipped and why, and which are refused (a refused plan is
//     never applied: Plan.Refused).
//   - BridgePolicy: turning a bridge's vlan_filtering on, with the entries
//     of its guest ports written again for their VLANs, as that implies
//     (VlanPolicy reads the policy, for status and doctor too).
//   - Incoming: a start on the destination of a live migration, whose
//     entries wait for the guest to resume here.
//   - Stop: what a stopped guest leaves to clean up: roamed entries, and on
//     a port that outlived it, its entries, flags and VLANs.
//
// It is pure: it reads the kernel, and libvirt's networks and port owners,
// only through the read-only View, so it is tested from fixtures and a
// dry run prints its plans. Package apply carries the steps out, through
// package kernel, which sends one message per step and decides nothing.
package plan
