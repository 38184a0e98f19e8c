package integration

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// TestKernelReadsMatchNetlink: the project's kernel.Conn readers (the only
// view the planner has of the FDB) report the same bridge entries as a
// plain netlink dump and iproute2: Entries per MAC, BridgeEntries for a
// bridge, PortEntries for a port. Clean-up of a persistent tap relies on
// PortEntries to see another MAC's static entry on it.
func TestKernelReadsMatchNetlink(t *testing.T) {
	t.Parallel()
	l := newStdLab(t)
	l.AddTap("tk1", "br0")
	l.AddTap("tk2", "br0")
	l.AddTap("tk3", "virbr0")
	l.fdbAdd(mac(13, 1), "tk1", "static")
	l.fdbAdd(mac(13, 2), "tk1", "static", "sticky")
	l.fdbAdd(mac(13, 3), "up0", "static")
	l.fdbAdd(mac(13, 4), "tk2", "dynamic", "extern_learn")
	l.fdbAdd(mac(13, 5), "tk3", "static")
	s := l.snap()
	c := l.conn()

	key := func(mac, port string, vlan, state int) string {
		return fmt.Sprintf("%s dev %s vlan %d state %#x", mac, port, vlan, state)
	}
	fromSnap := func(keep func(row) bool) []string {
		var out []string
		for _, r := range s.FDB {
			if keep(r) {
				out = append(out, key(r.MAC, r.Port, r.Vlan, r.State))
			}
		}
		sort.Strings(out)
		return out
	}
	fromConn := func(es []model.Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, key(e.MAC, e.Port, e.Vlan, e.State))
		}
		sort.Strings(out)
		return out
	}
	compare := func(what string, want, got []string) {
		t.Helper()
		if strings.Join(want, "\n") != strings.Join(got, "\n") {
			t.Errorf("%s:\nnetlink dump and iproute2:\n  %s\nkernel.Conn:\n  %s", what,
				strings.Join(want, "\n  "), strings.Join(got, "\n  "))
		}
	}

	for _, brName := range []string{"br0", "virbr0"} {
		br, err := c.Link(brName)
		if err != nil || br == nil {
			t.Fatalf("Link(%s): %v %v", brName, br, err)
		}
		got, err := c.BridgeEntries(br)
		if err != nil {
			t.Fatalf("BridgeEntries(%s): %v", brName, err)
		}
		compare("BridgeEntries("+brName+")", fromSnap(func(r row) bool { return r.Master == brName }), fromConn(got))
	}
	br, _ := c.Link("br0")
	for _, portName := range []string{"tk1", "tk2", "up0"} {
		port, err := c.Link(portName)
		if err != nil || port == nil {
			t.Fatalf("Link(%s): %v %v", portName, port, err)
		}
		got, err := c.PortEntries(br, port)
		if err != nil {
			t.Fatalf("PortEntries(br0, %s): %v", portName, err)
		}
		compare("PortEntries(br0, "+portName+")", fromSnap(func(r row) bool { return r.Master == "br0" && r.Port == portName }), fromConn(got))
	}
	for i := 1; i <= 5; i++ {
		m := mac(13, i)
		got, err := c.Entries(br, m)
		if err != nil {
			t.Fatalf("Entries(br0, %s): %v", m, err)
		}
		compare("Entries(br0, "+m+")", fromSnap(func(r row) bool { return r.Master == "br0" && r.MAC == m }), fromConn(got))
	}
}

// TestSetPortFlagsSendsLockedOnlyWhenAsked: the kernel layer decides
// nothing. A flags write without withLocked leaves a port's locked flag as
// someone else set it; with withLocked it writes the flag it is given.
// Read back through iproute2.
func TestSetPortFlagsSendsLockedOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	l := newStdLab(t)
	l.AddTap("tl1", "br0")
	c := l.conn()
	port, err := c.Link("tl1")
	if err != nil || port == nil {
		t.Fatalf("Link(tl1): %v %v", port, err)
	}
	if !port.LockCapable {
		t.Skip("this kernel has no locked bridge ports (Linux 5.18+)")
	}
	locked := func() string {
		t.Helper()
		out := l.Bridge("-d", "link", "show", "dev", "tl1")
		for _, f := range []string{"locked on", "locked off"} {
			if strings.Contains(out, f) {
				return f
			}
		}
		t.Fatalf("bridge -d link show dev tl1 has no locked flag:\n%s", out)
		return ""
	}
	l.Bridge("link", "set", "dev", "tl1", "locked", "on")
	if err := c.SetPortFlags(port.Index, model.Flags{}, false, false); err != nil {
		t.Fatal(err)
	}
	if got := locked(); got != "locked on" {
		t.Errorf("after a flags write without locked: %s, want the port left locked on", got)
	}
	if err := c.SetPortFlags(port.Index, model.Flags{}, true, false); err != nil {
		t.Fatal(err)
	}
	if got := locked(); got != "locked off" {
		t.Errorf("after a flags write with locked off: %s, want locked off", got)
	}
	if out := l.Bridge("-d", "link", "show", "dev", "tl1"); !strings.Contains(out, "learning off") || !strings.Contains(out, "flood off") {
		t.Errorf("learning and flood not written:\n%s", out)
	}
}
