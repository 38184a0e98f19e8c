//go:build vm

package vm

import (
	"slices"
	"strings"
	"testing"
)

// TestEnableFilteringExtendsEntries: a guest start that turns the bridge's
// vlan_filtering on (vlan_filtering = "enable") writes the static entries
// already on other guests' ports again, so that they cover those ports'
// VLANs, as a step of its plan. Read back through netlink and
// iproute2 on Debian's kernel, which filters VLANs.
func TestEnableFilteringExtendsEntries(t *testing.T) {
	n := newNS(t, "policy")
	n.ip("link add br0 type bridge vlan_filtering 0")
	n.ip("link set dev br0 up")
	const other, otherMAC = "fdbtoth0", "52:54:00:fd:b3:01"
	const tap, mac = "fdbttap3", "52:54:00:fd:b3:02"
	n.addTap(other, "br0")
	n.addTap(tap, "br0")
	n.bridge("vlan add dev " + other + " vid 20 master")
	// Another guest's entry, written for VLAN 0 only while the bridge did
	// not filter.
	n.bridge("fdb replace " + otherMAC + " dev " + other + " master static vlan 0")
	n.bridge("fdb del " + otherMAC + " dev " + other + " master vlan 1")
	n.bridge("fdb del " + otherMAC + " dev " + other + " master vlan 20")
	before := masterEntries(n.fdbBoth(otherMAC), "br0")
	if len(before) != 1 || before[0].Vlan != 0 {
		t.Fatalf("set-up: entries for %s = %v, want VLAN 0 alone", otherMAC, before)
	}

	cfg := writeConfig(t, "bridges = [\"br0\"]\n[bridge.br0]\nvlan_filtering = \"enable\"\n")
	dom := domain{
		Name: "fdbt-policy",
		UUID: "5d4c1b0e-0000-4000-8000-0000000000b1",
		ID:   23,
		NICs: []nic{{MAC: mac, Bridge: "br0", Tap: tap}},
	}
	r := n.qemuHook(cfg, dom, "start", "begin")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("start begin: exit %d, stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// The rewrite is a step of the plan, logged like every other one.
	if step := "fdb replace " + otherMAC + " dev " + other + " master br0 static (again"; !strings.Contains(r.stderr, step) {
		t.Errorf("the hook's log does not show the step %q:\n%s", step, r.stderr)
	}
	if !n.vlanFiltering("br0") {
		t.Fatal("vlan_filtering is still 0 after the start")
	}
	got := masterEntries(n.fdbBoth(otherMAC), "br0")
	for _, vid := range []int{0, 1, 20} {
		want := fdbEntry{MAC: otherMAC, Dev: other, Vlan: vid, Master: "br0", Flags: "static"}
		if !hasEntry(got, want) {
			t.Errorf("missing %v after the filter went on; entries for %s: %v", want, otherMAC, got)
		}
	}
	if out := n.bridge("fdb show dev " + other); !strings.Contains(out, otherMAC+" vlan 20 master br0 static") {
		t.Errorf("bridge fdb show dev %s lacks %s for VLAN 20:\n%s", other, otherMAC, out)
	}
}

// TestStopTakesGuestVlansOffSurvivingTap: a tap that outlives its guest
// (a persistent tap) loses the VLANs the guest's start gave it at
// "stopped end" and gets the bridge's default pvid back, as a newly
// enslaved port has; read back through netlink and bridge vlan show.
func TestStopTakesGuestVlansOffSurvivingTap(t *testing.T) {
	n := newNS(t, "stopvlan")
	n.ip("link add br0 type bridge vlan_filtering 1")
	n.ip("link set dev br0 up")
	const tap, mac = "fdbtsv0", "52:54:00:fd:b4:01"
	n.addTap(tap, "br0")
	cfg := writeConfig(t, "bridges = [\"br0\"]\n")
	dom := domain{Name: "fdbt-stopvlan", UUID: "5d4c1b0e-0000-4000-8000-0000000000b4", ID: 33,
		NICs: []nic{{MAC: mac, Bridge: "br0", Tap: tap}}}
	meta := `<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1"><fdbhook:interface mac="` + mac + `" pvid="10" vlans="20"/></fdbhook:fdb>`
	if r := n.qemuHookXML(cfg, dom.Name, withMetadata(dom.xml(t), meta), "start", "begin"); r.code != 0 {
		t.Fatalf("start: exit %d, stderr %s", r.code, r.stderr)
	}
	if got := portVlans(t, n, tap); !slices.Equal(got, []string{"10 pvid untagged", "20"}) {
		t.Fatalf("%s VLANs after the start = %v, want [10 pvid untagged 20]", tap, got)
	}
	stopped := dom
	stopped.ID = 0
	if r := n.qemuHookXML(cfg, stopped.Name, withMetadata(stopped.xml(t), meta), "stopped", "end"); r.code != 0 {
		t.Fatalf("stopped end: exit %d, stderr %s", r.code, r.stderr)
	}
	if got := portVlans(t, n, tap); !slices.Equal(got, []string{"1 pvid untagged"}) {
		t.Errorf("%s VLANs after stopped end = %v, want the bridge default [1 pvid untagged]", tap, got)
	}
	if l, f := n.portFlags(tap); !l || !f {
		t.Errorf("%s after stopped end: learning=%v flood=%v, want both on", tap, l, f)
	}
}
