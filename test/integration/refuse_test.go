package integration

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestFailureHalfwayChangesNothing: t2's second br0 tap (vnet7) is
// missing. The start fails with exit 1 and the one-line message of the
// contract, and the first tap keeps its flags and entries exactly.
func TestFailureHalfwayChangesNothing(t *testing.T) {
	t.Parallel()
	l := newStdLab(t)
	l.AddTap("guest-t2-a", "br0")
	l.AddTap("vnet6", "virbr0")
	// Give the first tap a state of its own, so "unchanged" means more
	// than "default".
	l.SetFlags("guest-t2-a", false, true)
	l.fdbAdd(mac(9, 3), "guest-t2-a", "static", "sticky")
	before := l.snap()
	r := l.hook(t, call{Args: []string{"t2", "start", "begin", "-"}, Stdin: fixture(t, "qemu-t2-start-begin.xml")})
	expectExit(t, r, 1)
	failureLine(t, r, "fdbhook: t2: 52:54:00:aa:cc:03 on br0: ", "vnet7", "does not exist")
	l.expectUnchanged(t, "failed start", before)
}

// device makes the device a refusal case needs; it returns its name, or
// skips when the kernel cannot make one.
type device func(t *testing.T, l *lab) string

// addLink adds a link through netlink, skipping when this kernel has no
// driver for its kind.
func addLink(t *testing.T, l *lab, link netlink.Link, master string) string {
	t.Helper()
	if err := l.Handle.LinkAdd(link); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Skipf("this kernel cannot create a %s device (%v): case not testable here", link.Type(), err)
		}
		t.Fatalf("adding %s %s: %v", link.Type(), link.Attrs().Name, err)
	}
	if master != "" {
		l.Enslave(link.Attrs().Name, master)
	}
	return link.Attrs().Name
}

// TestRefusals: a managed NIC whose target is not a guest tap on a bridge
// refuses the start (exit 1, one line naming the device and its kind) and
// nothing is applied, not even to the guest's good NIC.
func TestRefusals(t *testing.T) {
	t.Parallel()
	attrs := func(name string) netlink.LinkAttrs { return netlink.LinkAttrs{Name: name} }
	child := func(l *lab, name string) netlink.LinkAttrs {
		return netlink.LinkAttrs{Name: name, ParentIndex: l.Index("up1")}
	}
	for _, tc := range []struct {
		name  string
		dev   device
		parts []string
	}{
		{"the bridge itself", func(t *testing.T, l *lab) string { return "br0" }, []string{"br0 is a bridge"}},
		{"the uplink veth", func(t *testing.T, l *lab) string { return "up0" }, []string{"up0 is a veth device"}},
		{"the other bridge", func(t *testing.T, l *lab) string { return "virbr0" }, []string{"virbr0 is a bridge"}},
		{"a vxlan port", func(t *testing.T, l *lab) string {
			return addLink(t, l, &netlink.Vxlan{LinkAttrs: attrs("fdbtvx0"), VxlanId: 5, Port: 4789}, "br0")
		}, []string{"fdbtvx0 is a vxlan device"}},
		{"a macvtap", func(t *testing.T, l *lab) string {
			return addLink(t, l, &netlink.Macvtap{Macvlan: netlink.Macvlan{LinkAttrs: child(l, "fdbtmvt0")}}, "")
		}, []string{"fdbtmvt0 is a macvtap device"}},
		{"a bond", func(t *testing.T, l *lab) string {
			return addLink(t, l, netlink.NewLinkBond(attrs("fdbtbond0")), "br0")
		}, []string{"fdbtbond0 is a bond device"}},
		{"a VLAN device", func(t *testing.T, l *lab) string {
			return addLink(t, l, &netlink.Vlan{LinkAttrs: child(l, "up1.10"), VlanId: 10}, "br0")
		}, []string{"up1.10 is a vlan device"}},
		{"a dummy", func(t *testing.T, l *lab) string {
			return addLink(t, l, &netlink.Dummy{LinkAttrs: attrs("fdbtdummy0")}, "br0")
		}, []string{"fdbtdummy0 is a dummy device"}},
		{"a device without a link kind (physical-like)", func(t *testing.T, l *lab) string { return "lo" },
			[]string{"lo is a physical device"}},
		{"a tun device", func(t *testing.T, l *lab) string {
			l.IP("tuntap", "add", "dev", "fdbttun0", "mode", "tun")
			return "fdbttun0"
		}, []string{"fdbttun0 is a tun device (not tap)"}},
		{"a tap not enslaved", func(t *testing.T, l *lab) string { l.AddTap("fdbtfree", ""); return "fdbtfree" },
			[]string{"tap fdbtfree is not enslaved to any bridge"}},
		{"a device that does not exist", func(t *testing.T, l *lab) string { return "fdbtgone" },
			[]string{"device fdbtgone does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newStdLab(t)
			l.AddTap("tg1", "br0")
			bad := tc.dev(t, l)
			before := l.snap()
			r := l.hook(t, call{Args: []string{"fdbt-r", "start", "begin", "-"}, Stdin: domain("fdbt-r", "",
				nic{MAC: mac(2, 1), Bridge: "br0", Target: "tg1"},
				nic{MAC: mac(2, 2), Bridge: "br0", Target: bad})})
			expectExit(t, r, 1)
			failureLine(t, r, "fdbhook: fdbt-r: "+mac(2, 2)+" on br0: ", tc.parts...)
			l.expectUnchanged(t, "refused start", before)
		})
	}
}

// TestUnmanagedBridgeSkipped: the XML says br0, but the kernel has the tap
// on virbr0, which is not managed: that NIC is skipped (the kernel is the
// truth), the other one is managed, exit 0.
func TestUnmanagedBridgeSkipped(t *testing.T) {
	t.Parallel()
	l := newStdLab(t)
	l.AddTap("tg1", "br0")
	l.AddTap("tg2", "virbr0")
	before := l.snap()
	r := l.hook(t, call{Args: []string{"fdbt-s", "start", "begin", "-"}, Stdin: domain("fdbt-s", "",
		nic{MAC: mac(3, 1), Bridge: "br0", Target: "tg1"},
		nic{MAC: mac(3, 2), Bridge: "br0", Target: "tg2"}),
		Env: []string{"FDBHOOK_LOG_LEVEL=debug"}})
	expectExit(t, r, 0)
	expectStderr(t, r, "tg2 on bridge virbr0, which is not managed")
	l.expect(t, "start with one NIC on an unmanaged bridge", before.managed("tg1", mac(3, 1)))
}

// TestDuplicateMAC: a MAC used twice, within one guest or by a second
// guest, refuses the start naming both ports; the first guest's ports and
// entries stay intact.
func TestDuplicateMAC(t *testing.T) {
	t.Parallel()
	t.Run("within one guest", func(t *testing.T) {
		t.Parallel()
		l := newStdLab(t)
		l.AddTap("tg1", "br0")
		l.AddTap("tg2", "br0")
		before := l.snap()
		r := l.hook(t, call{Args: []string{"fdbt-d", "start", "begin", "-"}, Stdin: domain("fdbt-d", "",
			nic{MAC: mac(4, 1), Bridge: "br0", Target: "tg1"},
			nic{MAC: mac(4, 1), Bridge: "br0", Target: "tg2"})})
		expectExit(t, r, 1)
		failureLine(t, r, "fdbhook: fdbt-d: "+mac(4, 1)+" on br0: ", "duplicate MAC", "ports tg1 and tg2")
		l.expectUnchanged(t, "duplicate MAC within one guest", before)
	})
	t.Run("across guests", func(t *testing.T) {
		t.Parallel()
		l := newStdLab(t)
		l.AddTap("ta", "br0")
		l.AddTap("tb", "br0")
		l.start(t, "fdbt-a", domain("fdbt-a", "", nic{MAC: mac(4, 2), Bridge: "br0", Target: "ta"}))
		before := l.snap()
		r := l.hook(t, call{Args: []string{"fdbt-b", "start", "begin", "-"},
			Stdin: domain("fdbt-b", "", nic{MAC: mac(4, 2), Bridge: "br0", Target: "tb"})})
		expectExit(t, r, 1)
		failureLine(t, r, "fdbhook: fdbt-b: "+mac(4, 2)+" on br0: ", "duplicate MAC", "static entry on ta,", "this guest's port is tb")
		l.expectUnchanged(t, "second guest with the same MAC", before)
		l.checkManaged(t, "ta", mac(4, 2))
	})
}
