package watch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// A duplicate MAC under on_error = "warn": g1 runs managed on vnet1 with
// mac1 and the watcher runs; then g2 starts on vnet2 with mac1 too. Its
// start hook refused it, so vnet2 learns and floods and has no entry.

const warnCfg = twoBridges + "on_error = \"warn\"\n"

// dupRig is that host, after the watcher has seen g2 start.
func dupRig(t *testing.T, cfg string) *rig {
	t.Helper()
	r := newRig(t, cfg)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	return r
}

func (r *rig) startSecond() {
	r.t.Helper()
	r.start()
	r.waitFor("g1 managed", r.managed("vnet1", mac1))
	r.k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Learning))
	r.guest("g2", "running", "br0:vnet2:"+mac1)
	r.emit(Event{Guest: "g2", Why: "test: g2 started"})
}

// warnings returns the log's warning lines about mac.
func (r *rig) warnings(mac string) []string {
	var out []string
	for _, l := range strings.Split(r.log.String(), "\n") {
		if strings.Contains(l, "warning") && strings.Contains(l, mac) {
			out = append(out, l)
		}
	}
	return out
}

// assertFirstKeeps checks the end state: g1's entry on vnet1 (sticky when
// want), vnet2 as the refusal left it, and one warning naming both.
func (r *rig) assertFirstKeeps(sticky bool) {
	r.t.Helper()
	r.waitFor("one warning naming both guests", func() bool {
		w := r.warnings(mac1)
		return len(w) == 1 && strings.Contains(w[0], "g1") && strings.Contains(w[0], "g2")
	})
	r.settle()
	if got := r.k.Static(mac1); !slices.Equal(got, []string{"vnet1"}) {
		r.t.Errorf("static entries for %s on %v, want on g1's vnet1 only", mac1, got)
	}
	if f, _ := r.k.Flags("vnet2"); f != kerneltest.Learning {
		r.t.Errorf("g2's refused port vnet2 has %v, want it as the refusal left it (%v)", f, kerneltest.Learning)
	}
	if f, _ := r.k.Flags("vnet1"); f != kerneltest.Managed {
		r.t.Errorf("g1's port vnet1 has %v, want %v", f, kerneltest.Managed)
	}
	for _, e := range r.k.AllEntries() {
		if e.MAC == mac1 && e.Port == "vnet1" && (e.NTFlags&model.NTFSticky != 0) != sticky {
			r.t.Errorf("g1's entry %v: sticky %v, want %v", e, !sticky, sticky)
		}
	}
	if w := r.warnings(mac1); len(w) != 1 {
		r.t.Errorf("%d warnings about %s, want one naming both guests:\n%s", len(w), mac1, strings.Join(w, "\n"))
	}
}

// TestDuplicateFirstGuestKeepsMAC: g1 was there first. It keeps its entry,
// pinned (sticky) so that g2's frames cannot move it, and g2's port stays
// as its refusal left it.
func TestDuplicateFirstGuestKeepsMAC(t *testing.T) {
	r := dupRig(t, warnCfg)
	r.startSecond()
	r.assertFirstKeeps(true)

	// g2 sends from the MAC: its port learns, the pinned entry stays.
	r.k.Learn("vnet2", mac1)
	r.emit(Event{PortIndex: r.k.Index("vnet2"), Why: "test: g2 sent a frame"})
	r.emit(Event{Resync: true, Why: "test: timer"})
	r.assertFirstKeeps(true)

	// g2 stops: g1's entry is written as configured again, not sticky.
	r.k.Delete("vnet2")
	r.removeGuest("g2")
	r.emit(Event{Guest: "g2", Why: "test: g2 stopped"})
	r.waitFor("g1's entry no longer pinned", func() bool {
		for _, e := range r.k.AllEntries() {
			if e.MAC == mac1 && e.Port == "vnet1" && e.NTFlags&model.NTFSticky == 0 {
				return true
			}
		}
		return false
	})
}

// TestDuplicateEntryTakenBack: on a kernel without sticky entries nothing
// pins g1's entry, and g2's first frame moves it to vnet2. The watcher
// puts it back on vnet1 and leaves vnet2 unmanaged.
func TestDuplicateEntryTakenBack(t *testing.T) {
	r := dupRig(t, warnCfg)
	r.k.Device("br0").StickyCapable = false
	r.startSecond()
	r.waitFor("g2 refused", func() bool { return len(r.warnings(mac1)) > 0 })
	r.k.Learn("vnet2", mac1)
	if got := r.k.Static(mac1); !slices.Equal(got, []string{"vnet2"}) {
		t.Fatalf("the frame did not move the entry: on %v", got)
	}
	r.emit(Event{PortIndex: r.k.Index("vnet2"), Why: "test: fdb " + mac1 + " changed"})
	r.waitFor("the entry back on vnet1", func() bool { return slices.Equal(r.k.Static(mac1), []string{"vnet1"}) })
	r.assertFirstKeeps(false)
	if !strings.Contains(r.log.String(), "vnet2") || !strings.Contains(r.log.String(), "fdb replace "+mac1+" dev vnet1") {
		t.Errorf("the entry's return is not logged:\n%s", r.log)
	}
}

// TestDuplicateStickyEntry: entries the configuration makes sticky cannot
// move at all; g2 is refused and g1 keeps its entry as it was.
func TestDuplicateStickyEntry(t *testing.T) {
	r := dupRig(t, warnCfg+"[bridge.br0]\nsticky = true\n")
	r.startSecond()
	r.assertFirstKeeps(true)
	before := r.k.Writes()
	r.k.Learn("vnet2", mac1)
	r.emit(Event{PortIndex: r.k.Index("vnet2"), Why: "test: g2 sent a frame"})
	r.assertFirstKeeps(true)
	if n := r.k.Writes() - before; n != 0 {
		t.Errorf("%d kernel writes after g2's frame, want none", n)
	}
}

// TestDuplicateSecondGuestStartedFirst: the guest whose port holds the
// static entry, not learning, keeps the MAC even when the other guest's
// port is older (g1 started unmanaged, g2 was managed at its start).
func TestDuplicateHolderKeepsMAC(t *testing.T) {
	r := newRig(t, warnCfg)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Managed))
	r.k.AddStatic(mac1, "vnet2")
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.guest("g2", "running", "br0:vnet2:"+mac1)
	r.start()
	r.waitFor("one warning naming both guests", func() bool {
		w := r.warnings(mac1)
		return len(w) == 1 && strings.Contains(w[0], "g1") && strings.Contains(w[0], "g2")
	})
	r.settle()
	if got := r.k.Static(mac1); !slices.Equal(got, []string{"vnet2"}) {
		t.Errorf("static entries for %s on %v, want on g2's vnet2", mac1, got)
	}
	if f, _ := r.k.Flags("vnet1"); f != kerneltest.Learning {
		t.Errorf("g1's refused port vnet1 has %v, want it untouched", f)
	}
}

// removeGuest deletes a guest's live XML, as libvirt does at its stop.
func (r *rig) removeGuest(name string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(r.dir, "run/qemu", name+".xml")); err != nil {
		r.t.Fatal(err)
	}
}
