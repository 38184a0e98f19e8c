//go:build vm

package vm

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/kernel"
)

// TestPrefetchOnVlanBridge: on a vlan_filtering bridge, what a connection
// reads ahead for several ports (their links and each MAC's entries for
// VLAN 0 and every VLAN of the bridge's ports) is exactly what a fresh
// connection reads call by call; and a three-NIC start, which reads ahead
// and writes pipelined, leaves each MAC's static entry on every VLAN of
// its port, read back through netlink and bridge fdb show.
func TestPrefetchOnVlanBridge(t *testing.T) {
	n := newNS(t, "prefetch")
	n.ip("link add br0 type bridge vlan_filtering 1")
	n.ip("link set dev br0 up")
	var nics []nic
	ports := map[string][]string{}
	for i := range 3 {
		tap, mac := fmt.Sprintf("fdbtpf%d", i), fmt.Sprintf("52:54:00:fd:b5:%02x", i)
		n.addTap(tap, "br0")
		n.bridge(fmt.Sprintf("vlan add dev %s vid %d master", tap, 10+i))
		nics = append(nics, nic{MAC: mac, Bridge: "br0", Tap: tap})
		ports[tap] = []string{mac}
	}
	// One MAC already has entries on its port, for VLAN 0 and its VLANs.
	n.bridge("fdb replace 52:54:00:fd:b5:00 dev fdbtpf0 master static")

	ahead, err := kernel.Open(n.ns, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ahead.Close()
	fresh, err := kernel.Open(n.ns, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	ahead.Prefetch(ports)
	seen := 0
	for tap, macs := range ports {
		got, err1 := ahead.Link(tap)
		want, err2 := fresh.Link(tap)
		if err1 != nil || err2 != nil || got == nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Link(%s) read ahead = %+v, %v; call by call %+v, %v", tap, got, err1, want, err2)
		}
		br, err := fresh.LinkByIndex(got.MasterIndex)
		if err != nil || br == nil || !br.VlanFiltering {
			t.Fatalf("bridge of %s = %+v, %v; want br0 filtering VLANs", tap, br, err)
		}
		gotE, err1 := ahead.Entries(br, macs[0])
		wantE, err2 := fresh.Entries(br, macs[0])
		if err1 != nil || err2 != nil || !reflect.DeepEqual(gotE, wantE) {
			t.Errorf("Entries(%s) read ahead = %+v, %v; call by call %+v, %v", macs[0], gotE, err1, wantE, err2)
		}
		seen += len(gotE)
	}
	// VLAN 0, the default pvid 1 and VLAN 10 of fdbtpf0.
	if seen != 3 {
		t.Errorf("read %d entries of the MAC on fdbtpf0, want 3 (VLAN 0, 1 and 10)", seen)
	}

	cfg := writeConfig(t, `bridges = ["br0"]
`)
	dom := domain{Name: "fdbt-prefetch", UUID: "5d4c1b0e-0000-4000-8000-0000000000b5", ID: 31, NICs: nics}
	n.qemuHookOK(cfg, dom, "start", "begin")
	for i, c := range nics {
		got := masterEntries(n.fdbBoth(c.MAC), "br0")
		for _, vid := range []int{0, 1, 10 + i} {
			want := fdbEntry{MAC: c.MAC, Dev: c.Tap, Vlan: vid, Master: "br0", Flags: "static"}
			if !hasEntry(got, want) {
				t.Errorf("missing %v; bridge entries for %s: %v", want, c.MAC, got)
			}
		}
		if len(got) != 3 {
			t.Errorf("bridge entries for %s = %v, want exactly VLAN 0, 1 and %d on %s", c.MAC, got, 10+i, c.Tap)
		}
		if l, f := n.portFlags(c.Tap); l || f {
			t.Errorf("%s after the hook: learning=%v flood=%v, want both off", c.Tap, l, f)
		}
	}
}
