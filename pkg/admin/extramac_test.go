package admin

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/test/lab"
)

const macVRRP = "00:00:5e:00:01:0a"

// extraMACGuest is g1 on vnet1 with a declared extra MAC (a VRRP virtual
// MAC), managed as its start leaves it: both entries on vnet1. The extra
// MAC has also roamed once, on a second bridge's uplink, for g6.
func extraMACHost(t *testing.T) (*kerneltest.Kernel, []*guest.Guest) {
	t.Helper()
	k := kerneltest.New()
	k.Add(kerneltest.Bridge("br0"))
	k.Add(kerneltest.Uplink("eth0", "br0"))
	k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Managed))
	k.Add(kerneltest.Tap("vnet6", "br0", kerneltest.Managed))
	k.AddStatic(macG1, "vnet1")
	k.AddStatic(macVRRP, "vnet1")
	k.AddStatic(macG5, "vnet6")
	k.AddStatic("00:00:5e:00:01:0b", "eth0")
	return k, []*guest.Guest{withExtraMAC(t, "g1", "vnet1", macG1, macVRRP), withExtraMAC(t, "g6", "vnet6", macG5, "00:00:5e:00:01:0b")}
}

// withExtraMAC is a running guest with one NIC on br0 and the extra MAC
// its metadata declares for it.
func withExtraMAC(t *testing.T, name, target, mac, extra string) *guest.Guest {
	t.Helper()
	d := lab.Domain{Name: name, NICs: lab.BridgeNICs("br0", target+"/"+mac),
		Metadata: `<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1"><fdbhook:interface mac="` + mac + `">` +
			`<fdbhook:mac address="` + extra + `"/></fdbhook:interface></fdbhook:fdb>`}
	g, err := guest.Parse([]byte(d.Live(lab.Status{Pid: 1})))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestStatusKnowsExtraMACs: a MAC declared in a guest's metadata is that
// guest's: ok on its port, roamed elsewhere, never "unknown".
func TestStatusKnowsExtraMACs(t *testing.T) {
	k, running := extraMACHost(t)
	rep, err := Status(state(t, k, cfgBr0, running, running), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]EntryReport{
		macVRRP:             {MAC: macVRRP, Port: "vnet1", State: manage.EntryOK, Guest: "g1", NIC: "net0"},
		"00:00:5e:00:01:0b": {MAC: "00:00:5e:00:01:0b", Port: "eth0", State: manage.EntryRoamed, Guest: "g6", NIC: "net0"},
	}
	for _, e := range rep.Bridges[0].Entries {
		w, ok := want[e.MAC]
		if !ok {
			continue
		}
		delete(want, e.MAC)
		if e.State != w.State || e.Guest != w.Guest || e.NIC != w.NIC || e.Port != w.Port {
			t.Errorf("entry %s on %s: state %s guest %q %q (%s), want %s of %s %s", e.MAC, e.Port, e.State, e.Guest, e.NIC, e.Why, w.State, w.Guest, w.NIC)
		}
	}
	if len(want) > 0 {
		t.Errorf("entries not reported: %v", want)
	}
	var b bytes.Buffer
	rep.Format(&b)
	if strings.Contains(b.String(), "unknown") {
		t.Errorf("status calls a declared extra MAC unknown:\n%s", b.String())
	}
}

// TestReconcileKnowsExtraMACs: reconcile does not leave a declared extra
// MAC alone as a stranger's, and moves one that roamed back to its port.
func TestReconcileKnowsExtraMACs(t *testing.T) {
	k, running := extraMACHost(t)
	res, err := manage.Reconcile(state(t, k, cfgBr0, running, running), k, false)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	FormatResult(&b, res)
	if strings.Contains(b.String(), "left alone") || res.Failed != 0 {
		t.Errorf("reconcile:\n%s", b.String())
	}
	if got := k.Static("00:00:5e:00:01:0b"); len(got) != 1 || got[0] != "vnet6" {
		t.Errorf("g6's extra MAC on %v after reconcile, want on vnet6", got)
	}
}
