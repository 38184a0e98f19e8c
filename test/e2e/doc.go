// Package e2e is the end-to-end suite: guests started by a real libvirtd with
// the fdbhook hooks installed, their bridge ports and FDB entries read back
// through netlink and, as an independent witness, through iproute2's bridge
// command. The tests carry the e2e build tag; test/e2e/run.sh prepares the
// host (libvirtd, hooks, test configuration) and runs them.
package e2e
