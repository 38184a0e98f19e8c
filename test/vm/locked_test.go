//go:build vm

package vm

import (
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// TestLockedPortDropsSpoofedFrames checks on the distribution kernel what
// lock_ports is for: the guest writes frames into its tap, as QEMU does;
// those from its own MAC leave the bridge through the uplink, those from a
// foreign source MAC are dropped at the locked port. Before the hook the
// same foreign frames pass, which shows the test can see the difference.
func TestLockedPortDropsSpoofedFrames(t *testing.T) {
	const (
		tap      = "fdbttap0"
		guestMAC = "52:54:00:fd:b3:01"
		spoofMAC = "02:00:00:fd:b3:66"
		frames   = 50
	)
	n := newNS(t, "locked")
	wire := newNS(t, "lockedwire")
	n.ip("link add br0 type bridge stp_state 0")
	n.ip("link add fdbtup type veth peer name fdbtpeer netns " + wire.name)
	n.ip("link set dev fdbtup master br0")
	n.ip("link set dev fdbtup up")
	n.ip("link set dev br0 up")
	wire.ip("link set dev fdbtpeer up")
	n.addTap(tap, "br0")

	g, err := testlab.OpenTap(n.ns, tap)
	if err != nil {
		t.Fatalf("opening %s as its guest: %v", tap, err)
	}
	defer unix.Close(g)
	up, err := testlab.OpenPacket(t, wire.ns, wire.name, "fdbtpeer")
	if err != nil {
		t.Fatalf("packet socket on fdbtpeer: %v", err)
	}
	defer up.Close()
	n.waitForwarding(tap)
	n.waitForwarding("fdbtup")
	if l, f, locked := n.lockFlags(tap); locked || !l || !f {
		t.Fatalf("%s starts with learning=%v flood=%v locked=%v, want learning and flood on, unlocked", tap, l, f, locked)
	}

	// Control: an unlocked port passes every source.
	own, foreign := guestSends(t, up, g, guestMAC, spoofMAC, frames/5)
	t.Logf("unlocked: own=%d/%d foreign=%d/%d", own, frames/5, foreign, frames/5)
	if own != frames/5 || foreign != frames/5 {
		t.Fatalf("before the hook the unlocked port passed own=%d foreign=%d of %d each: the lab does not forward", own, foreign, frames/5)
	}

	cfg := writeConfig(t, `bridges = ["br0"]
on_error = "fail"

[bridge.br0]
lock_ports = true
`)
	dom := domain{
		Name: "fdbt-locked",
		UUID: "5d4c1b0e-0000-4000-8000-0000000000c1",
		ID:   41,
		NICs: []nic{{MAC: guestMAC, Bridge: "br0", Tap: tap}},
	}
	n.qemuHookOK(cfg, dom, "start", "begin")

	if l, f, locked := n.lockFlags(tap); !locked || l || f {
		t.Errorf("%s after the hook: learning=%v flood=%v locked=%v, want learning off, flood off, locked", tap, l, f, locked)
	}
	if _, _, locked := n.lockFlags("fdbtup"); locked {
		t.Errorf("the uplink fdbtup is locked")
	}
	// This kernel also adds the entry for each VLAN the port has (VLAN 1,
	// the default PVID), even with vlan_filtering off: every entry for the
	// MAC must be static and on the tap.
	want := fdbEntry{MAC: guestMAC, Dev: tap, Master: "br0", Flags: "static"}
	es := masterEntries(n.fdbBoth(guestMAC), "br0")
	if !hasEntry(es, want) {
		t.Errorf("entries for %s after the hook: %v, want %v among them", guestMAC, es, want)
	}
	for _, e := range es {
		if e.Dev != tap || e.Flags != "static" {
			t.Errorf("entry %v after the hook, want only static entries on %s", e, tap)
		}
	}
	// The control taught the bridge spoofMAC on the tap; a locked port
	// passes a source that has an entry on it, so that entry must be gone.
	if es := masterEntries(n.fdbBoth(spoofMAC), "br0"); len(es) != 0 {
		t.Errorf("entries for %s learned before the lock are still there: %v", spoofMAC, es)
	}

	own, foreign = guestSends(t, up, g, guestMAC, spoofMAC, frames)
	t.Logf("locked: own=%d/%d foreign=%d/%d", own, frames, foreign, frames)
	if own != frames {
		t.Errorf("%d of %d frames from the guest's own MAC %s left the bridge, want all", own, frames, guestMAC)
	}
	if foreign != 0 {
		t.Errorf("%d of %d frames from the foreign MAC %s left the bridge, want none", foreign, frames, spoofMAC)
	}
	if es := masterEntries(n.fdbBoth(spoofMAC), "br0"); len(es) != 0 {
		t.Errorf("the locked port learned %s: %v", spoofMAC, es)
	}
}

// lockFlags reads a bridge port's learning, flood and locked flags through
// the project's netlink reader and through `bridge -d link show`, and
// fails the test when they disagree or the kernel reports no locked flag.
func (n *testNS) lockFlags(dev string) (learning, flood, locked bool) {
	n.t.Helper()
	ns, err := netns.GetFromName(n.name)
	if err != nil {
		n.t.Fatalf("netns %s: %v", n.name, err)
	}
	defer ns.Close()
	c, err := kernel.Open(ns, kernel.DefaultTimeout)
	if err != nil {
		n.t.Fatalf("netlink in %s: %v", n.name, err)
	}
	defer c.Close()
	l, err := c.Link(dev)
	if err != nil || l == nil {
		n.t.Fatalf("netlink: link %s: %v", dev, err)
	}
	if !l.LockCapable {
		n.t.Fatalf("netlink: %s has no IFLA_BRPORT_LOCKED; this kernel (5.18+ has it) cannot lock ports", dev)
	}
	learning, flood = n.portFlags(dev)
	if learning != l.Flags.Learning || flood != l.Flags.Flood {
		n.t.Fatalf("%s: fdbhook's netlink reader says %v, the netlink package learning=%v flood=%v", dev, l.Flags, learning, flood)
	}
	out := n.bridge("-d link show dev " + dev)
	var cli string
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "locked" {
			cli = f[i+1]
		}
	}
	if cli != "on" && cli != "off" {
		n.t.Fatalf("no 'locked on|off' in bridge -d link show dev %s:\n%s", dev, out)
	}
	if (cli == "on") != l.Flags.Locked {
		n.t.Fatalf("%s locked: netlink says %v, bridge -d link says %s", dev, l.Flags.Locked, cli)
	}
	return learning, flood, l.Flags.Locked
}

// waitForwarding waits until the bridge forwards on port (a tap only once
// its file descriptor is open: carrier).
func (n *testNS) waitForwarding(port string) {
	n.t.Helper()
	var out string
	if !waitFor(5*time.Second, func() bool {
		out = n.bridge("link show dev " + port)
		return strings.Contains(out, "state forwarding")
	}) {
		n.t.Fatalf("%s does not forward after 5 s: %s", port, out)
	}
}

// guestSends has the guest write count frames from own and count from
// foreign into its tap, interleaved, then a barrier frame from own (which
// the port passes locked or not), and counts the frames of each kind that
// reach the wire (testlab.GuestSends).
func guestSends(t *testing.T, wire *testlab.PacketSock, tapFD int, own, foreign string, count int) (ownN, foreignN int) {
	t.Helper()
	srcs := make([]string, 0, 2*count)
	for range count {
		srcs = append(srcs, own, foreign)
	}
	passed := wire.GuestSends(t, tapFD, own, srcs, 5*time.Second)
	return passed[own], passed[foreign]
}
