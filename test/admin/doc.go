// Package admin tests the fdbhook command's status, doctor and reconcile
// as an admin runs them: the real binary under `ip netns exec`
// in a network namespace of its own, with a configuration and a fake
// libvirt directory (FDBHOOK_LIBVIRT_RUN, FDBHOOK_LIBVIRT_ETC) written by
// the test. Every problem status must flag is built in the kernel, and what
// reconcile fixes is read back through netlink and, as an independent
// witness, through iproute2's bridge command. The tests need root and skip
// with the reason otherwise.
package admin
