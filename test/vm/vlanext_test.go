//go:build vm

package vm

import (
	"sort"
	"testing"
)

// hostbrNetwork is the network hook's input for a libvirt network whose
// forward mode is bridge over br0, as libvirt 9.0 passes it at "start begin"
// (testdata/libvirt-9.0/network-hostbr-start-begin.xml).
const hostbrNetwork = `<hookData>
  <network>
    <name>hostbr</name>
    <uuid>829f7929-81af-45ab-900b-cba28826dde9</uuid>
    <forward mode='bridge'/>
    <bridge name='br0'/>
  </network>
</hookData>
`

// TestVlanFilteringExtendsEntries checks the promise of vlan_filtering =
// "enable" for guests that were already running: a guest started while the
// bridge did not filter has a static entry for the VLANs its port had then;
// a VLAN added to its port later has none (the kernel does not extend
// entries by itself). When fdbhook then turns vlan_filtering on, the
// guest's entry must exist for every VLAN its port carries, or frames for
// the guest on the new VLAN are flooded (or, with flood off, lost).
//
// Turned on two ways: by the network hook when the network starts, and by
// the qemu hook when the next guest on the bridge starts.
func TestVlanFilteringExtendsEntries(t *testing.T) {
	for _, via := range []string{"network hook", "qemu hook"} {
		t.Run(via, func(t *testing.T) {
			n := newNS(t, map[string]string{"network hook": "vext-net", "qemu hook": "vext-qemu"}[via])
			n.ip("link add br0 type bridge vlan_filtering 0")
			n.ip("link set dev br0 up")
			const tap, mac = "fdbtxtap0", "52:54:00:fd:b3:01"
			n.addTap(tap, "br0")
			first := domain{Name: "fdbt-vext0", UUID: "5d4c1b0e-0000-4000-8000-0000000000c1", ID: 31,
				NICs: []nic{{MAC: mac, Bridge: "br0", Tap: tap}}}
			n.qemuHookOK(writeConfig(t, "bridges = [\"br0\"]\n"), first, "start", "begin")
			if n.vlanFiltering("br0") {
				t.Fatal("br0 has vlan_filtering 1 after a start whose config leaves it alone")
			}
			before := entryVlans(masterEntries(n.fdbBoth(mac), "br0"), tap)
			t.Logf("entries for %s on %s with vlan_filtering 0: VLANs %v", mac, tap, before)

			// The admin adds VLAN 10 to the running guest's port.
			n.bridge("vlan add dev " + tap + " vid 10 master")
			for _, v := range entryVlans(masterEntries(n.fdbBoth(mac), "br0"), tap) {
				if v == 10 {
					t.Fatalf("the kernel wrote an entry for VLAN 10 when the VLAN was added: nothing left for fdbhook to extend")
				}
			}

			enable := writeConfig(t, `bridges = ["br0"]
networks = ["hostbr"]

[bridge.br0]
vlan_filtering = "enable"
`)
			switch via {
			case "network hook":
				r := n.networkHookXML(enable, "hostbr", []byte(hostbrNetwork), "start", "begin")
				if r.code != 0 || r.stdout != "" {
					t.Fatalf("network-hook hostbr start begin: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
				}
			case "qemu hook":
				const tap2 = "fdbtxtap1"
				n.addTap(tap2, "br0")
				n.qemuHookOK(enable, domain{Name: "fdbt-vext1", UUID: "5d4c1b0e-0000-4000-8000-0000000000c2", ID: 32,
					NICs: []nic{{MAC: "52:54:00:fd:b3:02", Bridge: "br0", Tap: tap2}}}, "start", "begin")
			}
			if !n.vlanFiltering("br0") {
				t.Fatalf("br0 vlan_filtering is 0 after the %s ran with vlan_filtering = \"enable\"", via)
			}

			got := masterEntries(n.fdbBoth(mac), "br0")
			for _, vid := range []int{0, 1, 10} {
				want := fdbEntry{MAC: mac, Dev: tap, Vlan: vid, Master: "br0", Flags: "static"}
				if !hasEntry(got, want) {
					t.Errorf("after the %s turned vlan_filtering on: missing %v; entries for %s: %v", via, want, mac, got)
				}
			}
			if len(got) != 3 {
				t.Errorf("entries for %s = %v, want exactly VLAN 0, 1 and 10 on %s", mac, got, tap)
			}
			t.Logf("entries for %s on %s once vlan_filtering is 1: VLANs %v", mac, tap, entryVlans(got, tap))
			if l, f := n.portFlags(tap); l || f {
				t.Errorf("%s: learning=%v flood=%v, want both off", tap, l, f)
			}
		})
	}
}

// entryVlans lists the VLANs of the entries on dev, sorted.
func entryVlans(es []fdbEntry, dev string) []int {
	var out []int
	for _, e := range es {
		if e.Dev == dev {
			out = append(out, e.Vlan)
		}
	}
	sort.Ints(out)
	return out
}
