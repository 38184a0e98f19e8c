//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/vishvananda/netns"

	nlconn "github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// 12. A guest whose metadata asks for undeclared-macs="report" (set with
// virsh metadata, read back from libvirt's XML by the hook): after virsh
// start its tap reads back learning on flood off locked on mab on and
// holds the guest's static entry, the uplink is untouched, and status
// finds no problem; after virsh destroy nothing of it is left.
func Test12UndeclaredMACsReport(t *testing.T) {
	timed(t)
	k := suite.k
	const (
		g   = "fdbtg12"
		mac = "52:54:00:fd:0c:01"
		tap = "fdbtg12a"
	)
	if l := link(t, uplink); !l.MabCapable {
		t.Skipf("this kernel reports no IFLA_BRPORT_MAB for %s: MAC Authentication Bypass needs Linux 6.2+", uplink)
	}
	uplinkBefore := link(t, uplink).Flags
	tempGuest(t, g, []nic{{typ: "bridge", mac: mac, source: bridge0, target: tap}})
	setMetadata(t, g, `<fdb undeclared-macs="report"/>`)

	virshOK(t, "start", g)
	if f := link(t, tap).Flags; f != model.Reporting {
		t.Errorf("netlink: %s is %s, want %s", tap, f.WordsMab(true, true), model.Reporting.WordsMab(true, true))
	}
	assertLocked(t, tap, true) // iproute2 as the witness of locked; it does not know mab
	if es := k.masterEntries(t, mac); len(es) != 1 || es[0].dev != tap || !es[0].static {
		t.Errorf("netlink: entries for %s: %v, want one static on %s", mac, es, tap)
	}
	if f := link(t, uplink).Flags; f != uplinkBefore {
		t.Errorf("netlink: uplink %s changed from %s to %s", uplink, uplinkBefore, f)
	}
	rep := statusJSON(t, 0)
	for _, p := range rep.Problems {
		if p.Port == tap || p.MAC == mac {
			t.Errorf("status --json: problem %q", p.Text)
		}
	}

	virshOK(t, "destroy", g)
	k.assertGone(t, tap)
	waitFor(5*time.Second, func() bool { return len(k.masterEntries(t, mac)) == 0 })
	k.assertNoEntries(t, mac, bridge0)
}

// link reads a device through the project's netlink code.
func link(t *testing.T, name string) *model.Link {
	t.Helper()
	c, err := nlconn.Open(netns.None(), nlconn.DefaultTimeout)
	if err != nil {
		t.Fatalf("netlink: %v", err)
	}
	defer c.Close()
	l, err := c.Link(name)
	if err != nil || l == nil {
		t.Fatalf("netlink: link %s: %v", name, err)
	}
	return l
}
