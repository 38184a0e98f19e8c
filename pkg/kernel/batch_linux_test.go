package kernel

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// addPorts adds n veth ports p0…p(n-1) to the lab's bridge (their peers
// stay outside it) and returns their indexes.
func (l *lab) addPorts(t testing.TB, n int) []int {
	t.Helper()
	var idx []int
	for i := range n {
		name := fmt.Sprintf("fdbtp%d", i)
		if err := l.h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "x"}); err != nil {
			t.Fatalf("adding %s: %v", name, err)
		}
		p, err := l.h.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.h.LinkSetMaster(p, l.br); err != nil {
			t.Fatalf("enslaving %s: %v", name, err)
		}
		idx = append(idx, p.Attrs().Index)
	}
	return idx
}

// hasStatic reports whether the witness reads a static entry for mac on
// port.
func (l *lab) hasStatic(t *testing.T, port int, mac string) bool {
	t.Helper()
	ns, err := l.h.NeighList(port, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(ns, func(n netlink.Neigh) bool {
		return n.HardwareAddr.String() == mac && n.State&unix.NUD_NOARP != 0
	})
}

func portMAC(i int) string { return fmt.Sprintf("52:54:00:fd:c1:%02x", i) }

// TestPrefetchAnswersAsTheCalls: after Prefetch, Link and Entries answer
// exactly what a fresh connection reads call by call, for more ports than
// one pipelined batch holds, for a port that does not exist and for MACs
// with and without entries; after a write they read the kernel again.
func TestPrefetchAnswersAsTheCalls(t *testing.T) {
	l := newLab(t)
	idx := l.addPorts(t, prefetchBatch+3)
	ports := map[string][]string{"nosuch0": {portMAC(99)}}
	for i := range idx {
		ports[fmt.Sprintf("fdbtp%d", i)] = []string{portMAC(i)}
	}
	// Every other port already has its static entry.
	for i := 0; i < len(idx); i += 2 {
		if err := l.c.ReplaceEntry(model.Entry{MAC: portMAC(i), PortIndex: idx[i], State: model.NUDNoARP, NTFlags: model.NTFMaster}); err != nil {
			t.Fatal(err)
		}
	}
	fresh, err := Open(l.ns, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	l.c.Prefetch(ports)
	if got := len(l.c.byName); got != len(idx) {
		t.Fatalf("Prefetch read %d of the %d existing ports", got, len(idx))
	}
	for name, macs := range ports {
		got, err1 := l.c.Link(name)
		want, err2 := fresh.Link(name)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Link(%s) after Prefetch = %+v, %v\nfresh connection: %+v, %v", name, got, err1, want, err2)
		}
		if got == nil {
			continue
		}
		br, _ := fresh.LinkByIndex(got.MasterIndex)
		gotE, err1 := l.c.Entries(br, macs[0])
		wantE, err2 := fresh.Entries(br, macs[0])
		if err1 != nil || err2 != nil || !reflect.DeepEqual(gotE, wantE) {
			t.Errorf("Entries(%s) after Prefetch = %+v, %v\nfresh connection: %+v, %v", macs[0], gotE, err1, wantE, err2)
		}
	}
	if _, ok := l.c.entries[entryKey{l.br.Attrs().Index, portMAC(0)}]; !ok {
		t.Errorf("Prefetch kept no entries of %s", portMAC(0))
	}
	// A write through the connection ends what Prefetch read.
	if err := l.c.SetPortFlags(idx[1], model.Flags{}, false, false); err != nil {
		t.Fatal(err)
	}
	if p, err := l.c.Link("fdbtp1"); err != nil || p.Flags != (model.Flags{}) {
		t.Errorf("Link(fdbtp1) after its flags were cleared = %+v, %v", p, err)
	}
	if err := l.c.ReplaceEntry(model.Entry{MAC: portMAC(1), PortIndex: idx[1], State: model.NUDNoARP, NTFlags: model.NTFMaster}); err != nil {
		t.Fatal(err)
	}
	if e, err := l.c.Entries(&model.Link{Name: "br0", Index: l.br.Attrs().Index}, portMAC(1)); err != nil || len(e) == 0 {
		t.Errorf("Entries(%s) after it was written = %+v, %v", portMAC(1), e, err)
	}
}

// TestPipeline: writes sent together are each carried out and answered on
// their own, a failing one in the middle included; the witness reads the
// result back.
func TestPipeline(t *testing.T) {
	l := newLab(t)
	idx := l.addPorts(t, pipelineBatch+2)
	errs := l.c.Pipeline(func() {
		for i, port := range idx {
			if i == 5 {
				// No entry to delete: ENOENT, and the writes after it are
				// still carried out.
				_ = l.c.DeleteEntry(model.Entry{MAC: portMAC(98), PortIndex: port})
				_ = l.c.ReplaceEntry(model.Entry{MAC: "not a MAC", PortIndex: port})
			}
			_ = l.c.ReplaceEntry(model.Entry{MAC: portMAC(i), PortIndex: port, State: model.NUDNoARP, NTFlags: model.NTFMaster})
			_ = l.c.SetPortFlags(port, model.Flags{}, false, false)
		}
	})
	if len(errs) != 2*len(idx)+2 {
		t.Fatalf("Pipeline returned %d errors for %d writes", len(errs), 2*len(idx)+2)
	}
	for i, err := range errs {
		switch {
		case i == 10 && !errors.Is(err, unix.ENOENT):
			t.Errorf("write %d (delete of an absent entry) = %v, want ENOENT", i, err)
		case i == 11 && err == nil:
			t.Errorf("write %d (a bad MAC) succeeded", i)
		case i != 10 && i != 11 && err != nil:
			t.Errorf("write %d = %v", i, err)
		}
	}
	for i, port := range idx {
		p, err := l.h.LinkByIndex(port)
		if err != nil {
			t.Fatal(err)
		}
		pi, err := l.h.LinkGetProtinfo(p)
		if err != nil || pi.Learning || pi.Flood {
			t.Errorf("%s after Pipeline: learning %v flood %v (%v)", p.Attrs().Name, pi.Learning, pi.Flood, err)
		}
		if !l.hasStatic(t, port, portMAC(i)) {
			t.Errorf("%s after Pipeline: no static entry for %s", p.Attrs().Name, portMAC(i))
		}
	}
	// Outside Pipeline a write waits for its answer again.
	if err := l.c.DeleteEntry(model.Entry{MAC: portMAC(98), PortIndex: idx[0]}); !errors.Is(err, unix.ENOENT) {
		t.Errorf("DeleteEntry of an absent entry after Pipeline = %v, want ENOENT", err)
	}
}
