package kernel

import (
	"fmt"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
	testlab "github.com/fdbhook/fdbhook/test/lab"
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
	kerneltest.Conform(t, kerneltest.Side{W: l.c, Frame: l.frameOnUp0(t),
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

// frameOnUp0 returns the real side's Frame: the first call brings br0, up0
// and its far end up1 up and waits for up0's carrier (the bridge forwards
// on it from then on: no STP); each sends a frame from mac out of up1, so
// that it arrives on up0, and returns once the bridge has an entry for
// mac, or after a second (a frame the bridge takes no entry from).
func (l *lab) frameOnUp0(t *testing.T) func(mac string) error {
	var up1 *testlab.PacketSock
	return func(mac string) error {
		if up1 == nil {
			for _, d := range []string{"br0", "up0", "up1"} {
				if err := l.h.LinkSetUp(link(t, l.h, d)); err != nil {
					return fmt.Errorf("setting %s up: %w", d, err)
				}
			}
			if err := l.waitCarrier("up0", 5*time.Second); err != nil {
				return err
			}
			var err error
			if up1, err = testlab.OpenPacket(t, l.ns, "up0's far end", "up1"); err != nil {
				return err
			}
		}
		if err := up1.Send(testlab.Frame("0a:fd:ff:ff:ff:fe", mac, "conform")); err != nil {
			return err
		}
		br, err := l.c.Link("br0")
		if err != nil {
			return err
		}
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if es, err := l.c.Entries(br, mac); err != nil || len(es) > 0 {
				return err
			}
		}
		return nil
	}
}

// waitCarrier waits until port has carrier, at most wait.
func (l *lab) waitCarrier(port string, wait time.Duration) error {
	for deadline := time.Now().Add(wait); ; time.Sleep(10 * time.Millisecond) {
		p, err := l.c.Link(port)
		switch {
		case err != nil:
			return err
		case p != nil && p.Carrier:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%s has no carrier after %s", port, wait)
		}
	}
}

func link(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
