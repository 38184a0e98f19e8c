//go:build vm

package vm

import (
	"net"
	"testing"
	"time"
)

// TestStopRemovesRoamedEntry checks the one thing left to clean at guest
// stop: a static entry that is not sticky moves to whichever port a frame
// with that source MAC arrives on (here the uplink, as after a live
// migration), survives the tap's deletion, and must be removed by
// "stopped end" without touching other static entries on the uplink.
func TestStopRemovesRoamedEntry(t *testing.T) {
	n := newNS(t, "roam")
	peer := newNS(t, "roampeer")
	n.ip("link add br0 type bridge vlan_filtering 0")
	n.ip("link add fdbtup type veth peer name fdbtpeer netns " + peer.name)
	n.ip("link set dev fdbtup master br0")
	n.ip("link set dev fdbtup up")
	n.ip("link set dev br0 up")
	peer.ip("link set dev fdbtpeer up")
	const tap, mac, other = "fdbttap0", "52:54:00:fd:b2:01", "52:54:00:fd:b2:99"
	n.addTap(tap, "br0")
	// An unrelated static entry on the uplink that the stop must leave alone.
	n.bridge("fdb replace " + other + " dev fdbtup master static")

	cfg := writeConfig(t, `bridges = ["br0"]
`)
	dom := domain{
		Name: "fdbt-roam",
		UUID: "5d4c1b0e-0000-4000-8000-0000000000b1",
		ID:   31,
		NICs: []nic{{MAC: mac, Bridge: "br0", Tap: tap}},
	}
	n.qemuHookOK(cfg, dom, "start", "begin")
	onTap := fdbEntry{MAC: mac, Dev: tap, Master: "br0", Flags: "static"}
	if es := masterEntries(n.fdbBoth(mac), "br0"); !hasEntry(es, onTap) {
		t.Fatalf("after start begin: want %v, have %v", onTap, es)
	}

	// The guest's MAC now shows up behind the uplink.
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	onUplink := fdbEntry{MAC: mac, Dev: "fdbtup", Master: "br0", Flags: "static"}
	roamed := waitFor(2*time.Second, func() bool {
		sendFrame(t, peer.name, "fdbtpeer", hw)
		return hasEntry(masterEntries(n.fdb(mac), "br0"), onUplink)
	})
	if !roamed {
		t.Fatalf("static entry did not roam to the uplink; entries: %v", n.fdbBoth(mac))
	}

	// libvirt deletes the tap (here: a custom name, so the stopped XML still
	// names it); the roamed entry is not the tap's and stays.
	n.ip("link del dev " + tap)
	if es := masterEntries(n.fdbBoth(mac), "br0"); !hasEntry(es, onUplink) {
		t.Fatalf("roamed entry gone before the hook ran: %v", es)
	}
	stopped := dom
	stopped.ID = 0
	n.qemuHookOK(cfg, stopped, "stopped", "end")

	if es := n.fdbBoth(mac); len(es) != 0 {
		t.Errorf("entries for %s left after stopped end: %v", mac, es)
	}
	keep := fdbEntry{MAC: other, Dev: "fdbtup", Master: "br0", Flags: "static"}
	if es := n.fdbBoth(other); !hasEntry(es, keep) {
		t.Errorf("stopped end removed an unrelated entry: want %v, have %v", keep, es)
	}
}
