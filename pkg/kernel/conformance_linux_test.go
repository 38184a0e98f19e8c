package kernel

import (
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// TestFakeConforms runs kerneltest's conformance sequence against this
// kernel, in a fresh namespace: the lab with the second bridge and the
// ports the sequence expects.
func TestFakeConforms(t *testing.T) {
	l := newLab(t)
	br1 := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br1"}}
	if err := l.h.LinkAdd(br1); err != nil {
		t.Fatalf("adding br1: %v", err)
	}
	for name, master := range map[string]int{"p1": l.br.Attrs().Index, "p2": l.br.Attrs().Index, "q1": br1.Attrs().Index} {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, MasterIndex: master}, PeerName: name + "x"}
		if err := l.h.LinkAdd(v); err != nil {
			t.Fatalf("adding %s: %v", name, err)
		}
	}
	kerneltest.Conform(t, kerneltest.Side{W: l.c,
		Read: func(t *testing.T) model.Reader {
			c, err := Open(l.ns, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			return c
		},
		Release: func(port string) error { return l.h.LinkSetNoMaster(link(t, l.h, port)) },
		Remove:  func(name string) error { return l.h.LinkDel(link(t, l.h, name)) },
	})
}

func link(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
