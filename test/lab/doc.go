// Package lab is the harness fdbhook's tests share. Every test that needs
// domain XML, a <domain> or a running guest's live XML, builds it here
// (Domain, NIC, Status), and every suite reads a bridge port's flags with
// ReadPortFlags. The kernel test suites (test/integration, test/features,
// test/admin, test/migration, and test/vm inside its VM) also get their
// host from it, and test/e2e its frame helpers and counters: each suite's
// TestMain copies the binaries it runs once (a Suite), and each test
// builds its host in throw-away network namespaces (a Namespace) that are
// deleted when it ends.
//
// A Namespace is never entered by the test's own thread: links are made
// through a netlink handle opened inside it, iproute2 runs with `-n`, and
// binaries run under `ip netns exec`. Only InNS moves a locked thread into
// a namespace, to open file descriptors (a tap's, a packet socket) there.
//
// The test's traffic is frames of EtherType carrying a mark (Frame,
// TaggedFrame, Marker): the test plays the guest through the tap's file
// descriptor (OpenTap) and the network beyond an uplink through a packet
// socket (OpenPacket); GuestSends counts what a port lets through. A
// Capture hands every frame a device carries, both ways, to the test, and
// a TapCounter, built on one, counts what a real guest's tap is handed
// and what the guest sends (test/migration, test/e2e).
//
// Every packet socket here follows its device (follow_linux.go): a device
// that goes down and up, or is not up yet when the socket is bound, is
// logged and counted across (the socket reports ENETDOWN once, then
// receives again once it is up), and one that is deleted, renamed
// or made again under its name fails the test when the counter is read (a
// socket bound to a deleted device receives nothing, without an error):
// a counter never reports a silent zero.
//
// test/vm uses only InNS, OpenTap, OpenPacket, GuestSends and the frame
// helpers: it runs in a busybox VM whose `ip` on PATH is not iproute2's,
// and makes its namespaces itself. The package is plain Go, so the VM's
// test binary, built with CGO_ENABLED=0 -tags vm, stays static.
//
// Everything is named fdbt-<tag>-<pid>-<n>; a suite deletes what runs of it
// that died left behind. Tests need root and skip, saying why, without it.
package lab
