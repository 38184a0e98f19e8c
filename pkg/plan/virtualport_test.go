package plan

import (
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/guest"
)

// TestVirtualPortNeverManaged: a NIC with a <virtualport> is someone
// else's port (Open vSwitch, 802.1Qbh, …), typed or not: libvirt accepts
// an untyped <virtualport/> and fills its type in from the network or the
// switch, so fdbhook never touches it, even on a managed bridge whose tap
// it would otherwise manage.
func TestVirtualPortNeverManaged(t *testing.T) {
	cfg := mustConfig(t, "bridges = [\"br0\"]\n")
	for _, vp := range []string{
		"<virtualport/>",
		"<virtualport><parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>",
		"<virtualport type=''/>",
		"<virtualport type='openvswitch'/>",
		"<virtualport type='802.1Qbh'/>",
	} {
		g, err := guest.Parse([]byte("<domain type='kvm'><name>v1</name><devices><interface type='bridge'>" +
			"<mac address='52:54:00:aa:cc:01'/><source bridge='br0'/><target dev='vnet7'/>" + vp +
			"</interface></devices></domain>"))
		if err != nil {
			t.Fatalf("%s: %v", vp, err)
		}
		p, err := Start(cfg, g, host())
		if err != nil {
			t.Fatalf("%s: %v", vp, err)
		}
		if len(p.Steps) != 0 || len(p.Refusals) != 0 || len(p.Skips) != 1 {
			t.Errorf("%s: steps %v, refusals %v, skips %v; want the NIC skipped", vp, p.Steps, p.Refusals, p.Skips)
			continue
		}
		if r := p.Skips[0].Reason; !strings.Contains(r, "Open vSwitch") && !strings.Contains(r, "virtualport") {
			t.Errorf("%s: skipped because %q, want the virtualport named", vp, r)
		}
	}
}
