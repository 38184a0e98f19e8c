package watch

import (
	"slices"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// followRig is a rig with undeclared_macs = "follow", follow_max = 2 on
// br0, and guest g1 running on vnet1 (MAB) with its port locked with MAB.
func followRig(t *testing.T) *rig {
	t.Helper()
	return mabRig(t, "undeclared_macs = \"follow\"\nfollow_max = 2\n")
}

// mabRig is a rig whose br0 has the policy br0 (lines of [bridge.br0]),
// and guest g1 running on vnet1, a port that can lock and has MAB, once
// the watcher has locked it with MAB.
func mabRig(t *testing.T, br0 string) *rig {
	t.Helper()
	r := newRig(t, twoBridges+"[bridge.br0]\n"+br0)
	tap := r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	tap.LockCapable, tap.MabCapable = true, true
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.start()
	r.waitFor("g1's port locked with MAB", func() bool { f, _ := r.k.Flags("vnet1"); return f == model.Reporting })
	return r
}

// lockedOn counts the locked entries on port.
func (r *rig) lockedOn(port string) int {
	idx := r.k.Index(port)
	n := 0
	for _, e := range r.k.AllEntries() {
		if e.Locked() && e.PortIndex == idx {
			n++
		}
	}
	return n
}

// TestFollowAuthorises: a MAC g1 sends from (a locked entry on its port)
// gets a static entry on the port, is recorded, and survives a resync and
// a watcher restart (the record, not the watcher's memory, keeps it); an
// entry removed by hand is written back.
func TestFollowAuthorises(t *testing.T) {
	r := followRig(t)
	const nested = "02:00:00:00:0e:01"
	r.k.Learn("vnet1", nested)
	r.emit(Event{PortIndex: r.k.Index("vnet1"), Why: "test: locked entry"})
	r.waitFor(nested+" static on vnet1", func() bool { return slices.Equal(r.k.Static(nested), []string{"vnet1"}) })
	if n := r.lockedOn("vnet1"); n != 0 {
		t.Errorf("%d locked entries left on vnet1", n)
	}
	if !strings.Contains(r.log.String(), "guest g1 net0 on vnet1: following MAC "+nested+" (1 of follow_max 2)") {
		t.Errorf("no line about following %s; log:\n%s", nested, r.log.String())
	}
	rec, ok, err := r.runDir.GetFollowed("g1")
	if !ok || err != nil || !slices.Equal(rec.NICs[mac1].MACs, []string{nested}) {
		t.Fatalf("record %+v (%v, %v), want %s for %s", rec, ok, err, nested, mac1)
	}

	r.k.DelStatic(nested, "vnet1")
	r.emit(Event{Resync: true, Why: "test: timer"})
	r.waitFor(nested+" written back by the resync", func() bool { return slices.Equal(r.k.Static(nested), []string{"vnet1"}) })
	if strings.Contains(r.log.String(), "stale") {
		t.Errorf("a followed MAC called stale; log:\n%s", r.log.String())
	}

	// A new watcher knows nothing but the record.
	r.release()
	w := *r.w
	r.w = &Watcher{Log: w.Log, Host: w.Host, OpenKernel: w.OpenKernel, Backoff: w.Backoff, Clock: w.Clock, Processed: w.Processed}
	r.k.DelStatic(nested, "vnet1")
	r.start()
	r.waitFor(nested+" written back by a new watcher", func() bool { return slices.Equal(r.k.Static(nested), []string{"vnet1"}) })
}

// TestFollowOverflow: g1 sends from more MACs than follow_max: two are
// followed, the overflow is logged once with the count, MAB goes off on
// vnet1 (locked, learning off), which leaves no locked entry there, and
// further MACs make none.
func TestFollowOverflow(t *testing.T) {
	r := followRig(t)
	for _, m := range []string{"02:00:00:00:0e:01", "02:00:00:00:0e:02", "02:00:00:00:0e:03", "02:00:00:00:0e:04"} {
		r.k.Learn("vnet1", m)
	}
	r.emit(Event{PortIndex: r.k.Index("vnet1"), Why: "test: locked entries"})
	r.settle()
	for _, m := range []string{"02:00:00:00:0e:01", "02:00:00:00:0e:02"} {
		if got := r.k.Static(m); !slices.Equal(got, []string{"vnet1"}) {
			t.Errorf("%s static on %v, want vnet1", m, got)
		}
	}
	if got := r.k.Static("02:00:00:00:0e:03"); len(got) != 0 {
		t.Errorf("the MAC past follow_max is static on %v", got)
	}
	if f, _ := r.k.Flags("vnet1"); f != (model.Flags{Locked: true}) {
		t.Errorf("vnet1 has %s, want learning off flood off locked on mab off", f)
	}
	if n := r.lockedOn("vnet1"); n != 0 {
		t.Errorf("%d locked entries left on vnet1 with MAB off", n)
	}
	r.k.Learn("vnet1", "02:00:00:00:0e:05")
	r.emit(Event{Resync: true, Why: "test: timer"})
	r.settle()
	if n := r.lockedOn("vnet1"); n != 0 {
		t.Errorf("%d locked entries on vnet1 after a further MAC", n)
	}
	const overflow = "guest g1 net0 on vnet1 sends from more MACs than it may follow (2, follow_max 2"
	if n := strings.Count(r.log.String(), overflow); n != 1 {
		t.Errorf("overflow logged %d times, want once; log:\n%s", n, r.log.String())
	}
	if rec, _, _ := r.runDir.GetFollowed("g1"); !rec.NICs[mac1].Full || len(rec.NICs[mac1].MACs) != 2 {
		t.Errorf("record %+v, want 2 MACs and full", rec)
	}
}

// TestFollowRefusesClaimed: a MAC another running guest has on the bridge
// is not followed (here its locked entry is in VLAN 10, g2's static entry
// in none), and the refusal names that guest, once.
func TestFollowRefusesClaimed(t *testing.T) {
	r := followRig(t)
	r.k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Learning))
	r.guest("g2", "running", "br0:vnet2:"+mac2)
	r.emit(Event{Guest: "g2", Why: "test: g2 started"})
	r.waitFor("g2 managed", r.managed("vnet2", mac2))
	r.k.AddEntry(model.Entry{MAC: mac2, Vlan: 10, PortIndex: r.k.Index("vnet1"), State: 0x02, NTFlags: model.NTFMaster, FlagsExt: model.NTFExtLocked})
	r.emit(Event{PortIndex: r.k.Index("vnet1"), Why: "test: locked entry"})
	r.emit(Event{Resync: true, Why: "test: timer"})
	r.settle()
	if got := r.k.Static(mac2); !slices.Equal(got, []string{"vnet2"}) {
		t.Errorf("%s static on %v, want vnet2 only", mac2, got)
	}
	const refusal = "guest g1 net0 on vnet1 sends from undeclared MAC " + mac2 + ", which is not followed: guest g2 (net0 on vnet2) has it"
	if n := strings.Count(r.log.String(), refusal); n != 1 {
		t.Errorf("refusal logged %d times, want once; log:\n%s", n, r.log.String())
	}
	if _, ok, _ := r.runDir.GetFollowed("g1"); ok {
		t.Error("a record for g1, which follows nothing")
	}
}
