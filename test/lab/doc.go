// Package lab is the harness fdbhook's tests share. Every test that needs
// domain XML, a <domain> or a running guest's live XML, builds it here
// (Domain, NIC, Status), and every suite reads a bridge port's flags with
// ReadPortFlags. The kernel test suites (test/integration, test/features,
// test/admin, and test/vm inside its VM) also get their host from it, and
// test/e2e its frame helpers: each suite's TestMain copies the binaries it
// runs once (a Suite), and each test builds its host in throw-away network
// namespaces (a Namespace) that are deleted when it ends.
//
// A Namespace is never entered by the test's own thread: links are made
// through a netlink handle opened inside it, iproute2 runs with `-n`, and
// binaries run under `ip netns exec`. Only InNS moves a locked thread into
// a namespace, to open file descriptors (a tap's, a packet socket) there.
//
// The test's traffic is frames of EtherType carrying a mark (Frame,
// TaggedFrame, Marker): the test plays the guest through the tap's file
// descriptor (OpenTap) and the network beyond an uplink through a packet
// socket (OpenPacket); GuestSends counts what a port lets through, and a
// TapCounter what a real guest's tap is handed (test/e2e).
//
// test/vm uses only InNS, OpenTap and the frame helpers: it runs in a
// busybox VM whose `ip` on PATH is not iproute2's, and makes its
// namespaces itself. The package is plain Go, so the VM's test binary,
// built with CGO_ENABLED=0 -tags vm, stays static.
//
// Everything is named fdbt-<tag>-<pid>-<n>; a suite deletes what runs of it
// that died left behind. Tests need root and skip, saying why, without it.
package lab
