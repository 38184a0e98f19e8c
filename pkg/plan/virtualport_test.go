package plan

import (
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/test/lab"
)

// TestVirtualPortNeverManaged: a NIC with a <virtualport> is someone
// else's port (Open vSwitch, 802.1Qbh, …), typed or not: libvirt accepts
// an untyped <virtualport/> and fills its type in from the network or the
// switch, so fdbhook never touches it, even on a managed bridge whose tap
// it would otherwise manage.
func TestVirtualPortNeverManaged(t *testing.T) {
	cfg := mustConfig(t, "bridges = [\"br0\"]\n")
	for _, vp := range []string{"-", "", "openvswitch", "802.1Qbh"} {
		nic := lab.NIC{MAC: "52:54:00:aa:cc:01", Bridge: "br0", Target: "vnet7", VirtualPort: vp}
		if vp == "" {
			nic.Extra = "<virtualport><parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>"
		}
		g, err := guest.Parse([]byte(lab.Domain{Name: "v1", NICs: []lab.NIC{nic}}.XML()))
		if err != nil {
			t.Fatalf("%q: %v", vp, err)
		}
		p, err := Start(cfg, g, host())
		if err != nil {
			t.Fatalf("%q: %v", vp, err)
		}
		if len(p.Steps) != 0 || len(p.Refusals) != 0 || len(p.Skips) != 1 {
			t.Errorf("%q: steps %v, refusals %v, skips %v; want the NIC skipped", vp, p.Steps, p.Refusals, p.Skips)
			continue
		}
		if r := p.Skips[0].Reason; !strings.Contains(r, "Open vSwitch") && !strings.Contains(r, "virtualport") {
			t.Errorf("%q: skipped because %q, want the virtualport named", vp, r)
		}
	}
}
