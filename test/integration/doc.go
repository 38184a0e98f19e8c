// Package integration runs the real qemu-hook binary, and the packages
// behind it, against real kernel bridges inside throw-away network
// namespaces (fdbt-it-*), and checks what it did by reading the kernel back
// through netlink and, as an independent witness, through iproute2.
//
// Every test needs root and skips, saying so, without it. Nothing outside
// the test's own namespaces is changed: runs that must see libvirt's live
// XML get a private /run (a tmpfs in the mount namespace `ip netns exec`
// creates), and in-process runs get temporary paths. Run it with
// `make integration` (or `go test -count=1 -v ./test/integration/` as root).
//
// What is covered, and what is not:
//   - start, reconnect and attach apply; stopped and release clean up;
//     every other operation changes nothing and prints nothing;
//   - refusals, on_error = "warn", dry runs, a table of bad input;
//   - all-or-nothing apply: a fault injected at every step, and a port
//     deleted midway, leave every port and entry as they were;
//   - 32 guests started and stopped at once, repeatedly;
//   - netlink calls that get no answer fail after the connection's timeout.
//
// Not covered here: bonds, VLAN devices and dummies where the kernel lacks
// their drivers (those cases skip and say so), bridge VLAN filtering (this
// kernel has none; test/vm runs a distribution kernel for it), and a kernel
// stuck holding the rtnl lock inside sendmsg, which no socket timeout can
// interrupt.
package integration
