package manage

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// TestSnapshotLookUp: after LookUp, entries are read one MAC at a time and
// once each, never by dumping the bridge's FDB; a port's entries by the
// kernel's own filtered read; a step carried out makes its MAC read again;
// once something dumps the bridge, the dump answers. Without LookUp the
// first question dumps, as before.
func TestSnapshotLookUp(t *testing.T) {
	k := kerneltest.New()
	br := k.Add(kerneltest.Bridge("br0"))
	tap := k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Managed))
	k.Add(kerneltest.Uplink("eth0", "br0"))
	k.AddStatic("52:54:00:00:00:01", "vnet1")
	for i := range 100 { // the uplink's learned entries
		k.AddEntry(model.Entry{MAC: fmt.Sprintf("0a:fd:00:00:00:%02x", i), Port: "eth0", State: unix.NUD_REACHABLE, NTFlags: model.NTFMaster})
	}
	s, err := Take(k)
	if err != nil {
		t.Fatal(err)
	}
	s.LookUp()
	for range 3 {
		es, err := s.Entries(br, "52:54:00:00:00:01")
		if err != nil || len(es) != 1 || es[0].PortIndex != tap.Index {
			t.Fatalf("Entries: %v, %v", es, err)
		}
	}
	if _, err := s.PortEntries(br, tap); err != nil {
		t.Fatal(err)
	}
	if n, d, p := k.Count("Entries"), k.Count("BridgeEntries"), k.Count("PortEntries"); n != 1 || d != 0 || p != 1 {
		t.Errorf("%d Entries, %d BridgeEntries, %d PortEntries calls; want 1, 0, 1", n, d, p)
	}

	s.Record(plan.Step{Kind: plan.AddEntry, MAC: "52:54:00:00:00:01", BridgeIndex: br.Index, PortIndex: tap.Index})
	s.Entries(br, "52:54:00:00:00:01")
	if n := k.Count("Entries"); n != 2 {
		t.Errorf("after a step on its MAC, %d Entries calls; want 2", n)
	}

	if _, err := s.BridgeEntries(br); err != nil {
		t.Fatal(err)
	}
	s.Entries(br, "52:54:00:00:00:01")
	s.Entries(br, "0a:fd:00:00:00:07")
	s.PortEntries(br, tap)
	if n, d, p := k.Count("Entries"), k.Count("BridgeEntries"), k.Count("PortEntries"); n != 2 || d != 1 || p != 1 {
		t.Errorf("once dumped: %d Entries, %d BridgeEntries, %d PortEntries calls; want 2, 1, 1", n, d, p)
	}

	k2 := kerneltest.New()
	br2 := k2.Add(kerneltest.Bridge("br0"))
	s2, _ := Take(k2)
	s2.Entries(br2, "52:54:00:00:00:01")
	s2.Entries(br2, "52:54:00:00:00:02")
	if n, d := k2.Count("Entries"), k2.Count("BridgeEntries"); n != 0 || d != 1 {
		t.Errorf("without LookUp: %d Entries, %d BridgeEntries calls; want 0, 1", n, d)
	}
}

// TestSnapshotReadErrors: a failed FDB read is an error, dump and lookup
// alike, never a bridge without entries; the next question reads again.
func TestSnapshotReadErrors(t *testing.T) {
	for _, lookUp := range []bool{false, true} {
		k := kerneltest.New()
		br := k.Add(kerneltest.Bridge("br0"))
		k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Managed))
		k.AddStatic("52:54:00:00:00:01", "vnet1")
		s, err := Take(k)
		if err != nil {
			t.Fatal(err)
		}
		if lookUp {
			s.LookUp()
		}
		fail := true
		k.FailWith(func(c kerneltest.Call) error {
			if fail && (c.Method == "Entries" || c.Method == "BridgeEntries") {
				fail = false
				return kerneltest.Injected(c)
			}
			return nil
		})
		if es, err := s.Entries(br, "52:54:00:00:00:01"); err == nil {
			t.Errorf("look up %v: a failed read gave %v and no error", lookUp, es)
		}
		if es, err := s.Entries(br, "52:54:00:00:00:01"); err != nil || len(es) != 1 {
			t.Errorf("look up %v: the read after the failure gave %v, %v; want the entry", lookUp, es, err)
		}
	}
}
