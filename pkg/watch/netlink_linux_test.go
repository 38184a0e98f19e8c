package watch

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/test/lab"
)

// TestNetlinkSourceNamesPorts subscribes in a fresh namespace and checks
// that what the watcher must notice (a tap enslaved, its learning flag
// turned on, a static entry added or deleted) arrives as a hint naming the
// port, that dynamic entries do not, and that the source stops promptly.
func TestNetlinkSourceNamesPorts(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") == "true" {
		t.Fatal("CI=true: this test needs root to create a network namespace")
	}
	ns := lab.NewNamespace(t, fmt.Sprintf("fdbt-wnl-%d", os.Getpid()))
	ns.IP("link", "add", "fdbtwbr", "type", "bridge")
	ns.IP("link", "set", "fdbtwbr", "up")
	ns.IP("tuntap", "add", "fdbtwtap", "mode", "tap")

	events, stop := runSource(t, &Netlink{NS: ns.NetNS, Log: quietLog()})
	time.Sleep(100 * time.Millisecond) // subscribed

	l, err := ns.Handle.LinkByName("fdbtwtap")
	if err != nil {
		t.Fatal(err)
	}
	idx := l.Attrs().Index
	expect := func(what string, ok func(Event) bool) {
		t.Helper()
		awaitEvent(t, events, what, ok, nil)
	}
	byName := func(e Event) bool { return e.Port == "fdbtwtap" }
	ns.IP("link", "set", "fdbtwtap", "master", "fdbtwbr")
	expect("the tap enslaved", byName)
	ns.Bridge("link", "set", "dev", "fdbtwtap", "learning", "off", "flood", "off")
	expect("learning off", byName)
	ns.Bridge("link", "set", "dev", "fdbtwtap", "learning", "on")
	expect("learning on by hand", byName)
	ns.Bridge("fdb", "replace", "52:54:00:fd:0c:01", "dev", "fdbtwtap", "master", "static")
	expect("a static entry added", func(e Event) bool { return e.PortIndex == idx && strings.Contains(e.Why, "changed") })
	ns.Bridge("fdb", "del", "52:54:00:fd:0c:01", "dev", "fdbtwtap", "master")
	expect("a static entry deleted", func(e Event) bool { return e.PortIndex == idx && strings.Contains(e.Why, "deleted") })

	stop()
}

// TestNeighEventFilter: only static entries of bridges are hints; the
// dynamic entries learning writes on the uplink all the time are not.
func TestNeighEventFilter(t *testing.T) {
	mk := func(family, state int) netlink.NeighUpdate {
		return netlink.NeighUpdate{Type: unix.RTM_NEWNEIGH, Neigh: netlink.Neigh{Family: family, State: state, LinkIndex: 7}}
	}
	for _, c := range []struct {
		u    netlink.NeighUpdate
		want bool
	}{
		{mk(unix.AF_BRIDGE, unix.NUD_NOARP), true},
		{mk(unix.AF_BRIDGE, unix.NUD_NOARP|unix.NUD_REACHABLE), true},
		{mk(unix.AF_BRIDGE, unix.NUD_REACHABLE), false},
		{mk(unix.AF_BRIDGE, unix.NUD_PERMANENT), false},
		{mk(unix.AF_INET, unix.NUD_NOARP), false},
	} {
		e, ok := neighEvent(c.u)
		if ok != c.want || (ok && e.PortIndex != 7) {
			t.Errorf("family %d state %#x: hint %v %+v, want %v", c.u.Family, c.u.State, ok, e, c.want)
		}
	}
}
