//go:build vm

package vm

import (
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// TestFakeConformsWithVlans runs kerneltest's conformance sequence against
// this kernel, which has bridge VLANs: every port gets VLAN 1, an entry
// written without a VLAN is written for each of its port's VLANs too, and
// the VLAN writes are carried out rather than refused as on the
// development host (pkg/kernel's TestFakeConforms).
func TestFakeConformsWithVlans(t *testing.T) {
	n := newNS(t, "conform")
	// kerneltest.ConformanceDevices, as pkg/kernel's lab has them
	for _, cmd := range []string{"link add br0 type bridge", "tuntap add dev fdbtk0 mode tap",
		"link add up0 type veth peer name up1", "link add p1 type veth peer name p1x", "link add p2 type veth peer name p2x",
		"link set dev fdbtk0 master br0", "link set dev up0 master br0", "link set dev p1 master br0", "link set dev p2 master br0",
		"link add br1 type bridge", "link add q1 type veth peer name q1x", "link set dev q1 master br1"} {
		n.ip(cmd)
	}
	c, err := kernel.Open(n.ns, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if br, err := c.Link("br0"); err != nil || br == nil || !br.VlanCapable {
		t.Fatalf("br0 = %+v, %v: this kernel should have bridge VLANs", br, err)
	}
	kerneltest.Conform(t, kerneltest.Side{W: c,
		Read: func(t *testing.T) model.Reader {
			r, err := kernel.Open(n.ns, 2*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(r.Close)
			return r
		},
		Release: func(port string) error { return n.h.LinkSetNoMaster(n.link(port)) },
		Remove:  func(name string) error { return n.h.LinkDel(n.link(name)) },
	})
}
