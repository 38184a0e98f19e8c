package watch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	"github.com/fdbhook/fdbhook/test/lab"
)

// handSource is a Source whose Run says when it started and ended.
type handSource struct{ started, ended chan struct{} }

func (h *handSource) Name() string { return "test" }
func (h *handSource) Run(ctx context.Context, emit func(Event)) {
	close(h.started)
	<-ctx.Done()
	close(h.ended)
}

// TestRunHoldsTheLockAndStops: Run takes the watcher lock, starts its
// sources, reconciles at start-up, and when its context ends stops the
// sources, waits for them and gives the lock back.
func TestRunHoldsTheLockAndStops(t *testing.T) {
	r := newRig(t, twoBridges)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	src := &handSource{started: make(chan struct{}), ended: make(chan struct{})}
	r.w.Sources = []Source{src}
	batches := make(chan []string, 16)
	r.w.Processed = func(guests []string, resync bool) { batches <- guests }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx) }()
	within := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s did not happen", what)
		}
	}
	within("the source's start", src.started)
	select {
	case got := <-batches:
		if !slices.Equal(got, []string{"g1"}) {
			t.Fatalf("start-up batch reconciled %v, want g1", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no start-up batch")
	}
	if !r.managed("vnet1", mac1)() {
		t.Error("g1 not managed after the start-up batch")
	}
	if w, running, _ := r.runDir.WatcherRunning(); !running || w.PID != os.Getpid() || !w.Since.Equal(epoch) {
		t.Errorf("watcher lock while running: %+v running=%v, want this process since the clock's now", w, running)
	}
	cancel()
	within("the source's end", src.ended)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, running, _ := r.runDir.WatcherRunning(); running {
		t.Error("the watcher lock is still held after Run returned")
	}
}

// TestReloadRestartsTheResyncTimer: [watch] resync changed by a reload
// takes effect at once (the next timer resync comes one new interval
// after the reload); a broken file and an unchanged value leave the timer
// as it was.
func TestReloadRestartsTheResyncTimer(t *testing.T) {
	r := startedWithG1(t)
	drift := func() {
		t.Helper()
		r.k.SetFlags("vnet1", kerneltest.Learning) // no event: only a resync sees it
	}
	healedAt := func(what string, after time.Duration) {
		t.Helper()
		r.clock.Advance(after - 1)
		if r.step() {
			t.Fatalf("%s: a resync before %v", what, after)
		}
		r.clock.Advance(1)
		if !r.step() || !r.managed("vnet1", mac1)() {
			t.Fatalf("%s: no resync healing vnet1 at %v; log:\n%s", what, after, r.log)
		}
	}
	drift()
	healedAt("the default interval", time.Minute)

	r.config(twoBridges + "[watch]\nresync = \"5s\"\n")
	r.emit(Event{Reload: true, Why: "test: SIGHUP"})
	r.settle()
	drift()
	healedAt("after the reload to 5s", 5*time.Second)

	r.clock.Advance(2 * time.Second)
	r.config(twoBridges + "[watch]\nresync = \"5\"\n") // broken: kept as it was
	r.emit(Event{Reload: true, Why: "test: SIGHUP"})
	r.settle()
	r.config(twoBridges + "[watch]\nresync = \"5s\"\n") // unchanged: the timer runs on
	r.emit(Event{Reload: true, Why: "test: SIGHUP"})
	r.settle()
	drift()
	healedAt("after a broken and an unchanged reload", 3*time.Second)
}

// TestRetriesBackOffThenGiveUp: a guest that cannot be managed is tried
// again after the backoff, doubled each time, MaxAttempts times in all;
// then its failure is logged once, at error (on_error = "fail") or
// warning (on_error = "warn") level, and a resync tries it again without
// logging the same failure twice.
func TestRetriesBackOffThenGiveUp(t *testing.T) {
	for _, onError := range []string{"fail", "warn"} {
		t.Run(onError, func(t *testing.T) {
			r := newRig(t, twoBridges+"on_error = \""+onError+"\"\n")
			r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
			r.k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Managed))
			r.k.AddStatic(mac1, "vnet2") // another guest's port has g1's MAC
			r.guest("g1", "running", "br0:vnet1:"+mac1)
			r.guest("g2", "running", "br0:vnet2:"+mac1)
			release, err := r.w.open()
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			r.step()
			var gaps []time.Duration
			for {
				due, ok := r.w.q.nextDue()
				if !ok {
					break
				}
				if len(gaps) > 20 {
					t.Fatalf("still retrying after %d retries (%v), want %d attempts in all; log:\n%s", len(gaps), gaps, r.w.MaxAttempts, r.log)
				}
				gaps = append(gaps, due.Sub(r.clock.Now()))
				r.clock.AdvanceTo(due)
				r.step()
			}
			want := []time.Duration{20 * ms, 40 * ms, 80 * ms, 160 * ms, 320 * ms}
			if !slices.Equal(gaps, want) {
				t.Errorf("retries after %v, want %v", gaps, want)
			}
			level := map[string]string{"fail": "error: guest g1:", "warn": "warning: guest g1:"}[onError]
			if n := strings.Count(r.log.String(), level); n != 1 {
				t.Errorf("the refusal logged %d times at %q, want once after the last attempt:\n%s", n, level, r.log)
			}
			if n := strings.Count(r.log.String(), "(retrying)"); n != 5 {
				t.Errorf("%d retries logged, want 5", n)
			}
			r.emit(Event{Resync: true, Why: "test"})
			r.settle()
			if n := strings.Count(r.log.String(), level); n != 1 {
				t.Errorf("the same refusal logged again after a resync (%d times)", n)
			}
		})
	}
}

// TestFailuresRequeueTheBatch: a batch that cannot be worked on at all
// (the kernel connection, libvirt's live XML directory, the hooks' lock)
// changes nothing and is put back, resync and clean-up included, after
// the backoff, not before.
func TestFailuresRequeueTheBatch(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(r *rig) (mend func())
	}{
		{"kernel connection", func(r *rig) func() {
			open := r.w.OpenKernel
			r.w.OpenKernel = func() (model.Kernel, error) { return nil, errors.New("netlink: too many open files") }
			return func() { r.w.OpenKernel = open }
		}},
		{"live XML directory", func(r *rig) func() {
			dir := filepath.Join(r.dir, "run/qemu")
			os.Rename(dir, dir+".away")
			os.WriteFile(dir, nil, 0o644) // not a directory: cannot be listed
			return func() { os.Remove(dir); os.Rename(dir+".away", dir) }
		}},
		{"hooks' lock", func(r *rig) func() {
			r.w.Host.LockTimeout = 10 * time.Millisecond
			f, err := os.OpenFile(r.w.Host.Lock, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
				t.Fatal(err)
			}
			return func() { f.Close() }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, twoBridges)
			r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
			r.orphan()
			r.guest("g1", "running", "br0:vnet1:"+mac1)
			mend := tc.breakIt(r)
			release, err := r.w.open()
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			r.step()
			if r.k.Writes() != 0 || !strings.Contains(r.log.String(), "error:") {
				t.Fatalf("the broken batch wrote %d times; log:\n%s", r.k.Writes(), r.log)
			}
			due, ok := r.w.q.nextDue()
			if !ok || due.Sub(r.clock.Now()) != r.w.Backoff {
				t.Fatalf("the batch is due again in %v (%v), want the backoff %v", due.Sub(r.clock.Now()), ok, r.w.Backoff)
			}
			mend()
			r.clock.Advance(r.w.Backoff - 1)
			if r.step() {
				t.Fatal("retried before the backoff")
			}
			r.clock.Advance(1)
			if !r.step() {
				t.Fatal("not retried after the backoff")
			}
			if !r.managed("vnet1", mac1)() || len(r.k.Static(mac9)) != 0 {
				t.Errorf("after the retry: g1 managed %v, stale entry on %v (want g1 managed and the stale entry gone)",
					r.managed("vnet1", mac1)(), r.k.Static(mac9))
			}
		})
	}
}

// TestPortHints: a hint for a port the live XML does not name yet is
// looked at again, with backoff, MaxAttempts times, when the port is a
// tap or veth on a bridge (a hotplugged NIC before libvirt rewrites the
// live XML); any other port is not looked at again. A port known by its
// index reconciles the guest that owns it.
func TestPortHints(t *testing.T) {
	r := startedWithG1(t)
	r.k.Add(kerneltest.Tap("vnet5", "br0", kerneltest.Learning))
	r.k.Add(kerneltest.Tap("vnet6", "", kerneltest.Learning))
	for _, tc := range []struct {
		e       Event
		retries int
	}{
		{Event{Port: "vnet5", Why: "test: a tap on a bridge"}, 5},
		{Event{Port: "vnet6", Why: "test: a tap on no bridge"}, 0},
		{Event{Port: "eth0", Why: "test: the uplink"}, 0},
		{Event{Port: "gone0", Why: "test: a port gone"}, 0},
	} {
		r.emit(tc.e)
		r.clock.Advance(r.w.Debounce)
		r.step()
		n := 0
		for ; n < 20; n++ {
			due, ok := r.w.q.nextDue()
			if !ok {
				break
			}
			r.clock.AdvanceTo(due)
			r.step()
		}
		if n != tc.retries {
			t.Errorf("%s: looked at again %d times, want %d", tc.e.Why, n, tc.retries)
		}
	}
	if f, _ := r.k.Flags("vnet5"); f != kerneltest.Learning {
		t.Errorf("vnet5, which no guest names, was changed: %v", f)
	}

	r.k.SetFlags("vnet1", kerneltest.Learning)
	r.emit(Event{PortIndex: r.k.Index("vnet1"), Why: "test: an FDB hint"})
	before := len(r.reconciled)
	r.waitFor("g1 healed from its port's index", r.managed("vnet1", mac1))
	if got := r.reconciled[before:]; len(got) != 1 || !slices.Equal(got[0], []string{"g1"}) {
		t.Errorf("batches after the index hint reconciled %v, want g1 once", got)
	}
}

// TestLiveXMLReplacedInOneTick: libvirt replaces a live XML (a rename) with
// one of the same size within the same modification time tick: the cache
// still reads the new one. A file that could not be parsed is read again
// at the next look even when nothing about it seems to have changed.
func TestLiveXMLReplacedInOneTick(t *testing.T) {
	r := startedWithG1(t)
	path := filepath.Join(r.dir, "run/qemu/g1.xml")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	r.k.Move("vnet1", "br1")
	r.k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Learning))
	r.guest("g1", "running", "br0:vnet2:"+mac1) // as long as before
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if fi2, _ := os.Stat(path); fi2.Size() != fi.Size() || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("the test's rewrite changed size or time: %d %v, was %d %v", fi2.Size(), fi2.ModTime(), fi.Size(), fi.ModTime())
	}
	r.emit(Event{Guest: "g1", Why: "test: live XML rewritten"})
	r.waitFor("the NIC on its new tap managed", r.managed("vnet2", mac1))

	// Damaged in place, then mended in place with the damaged file's
	// inode, size and time: what could not be parsed is read again.
	good, _ := os.ReadFile(path)
	bad := append([]byte("<broken"), good[len("<broken"):]...)
	damagedAt := fi.ModTime().Add(time.Second)
	writeInPlace := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, damagedAt, damagedAt); err != nil {
			t.Fatal(err)
		}
	}
	writeInPlace(bad)
	r.emit(Event{Guest: "g1", Why: "test: damaged"})
	r.settle()
	if !strings.Contains(r.log.String(), "g1.xml: ") {
		t.Fatalf("the damaged live XML was not read; log:\n%s", r.log)
	}
	r.k.SetFlags("vnet2", kerneltest.Learning)
	writeInPlace(good)
	r.emit(Event{Guest: "g1", Why: "test: mended"})
	r.waitFor("the guest managed once its file reads again", r.managed("vnet2", mac1))
}

// TestFailedFDBReadIsNotNoEntries: an FDB read that fails (the per-MAC
// lookup the watcher's batches make, or a dump) is an error, retried,
// never an empty table: nothing is written from it, and once the read
// works the guest, whose entry is in place, needs no write.
func TestFailedFDBReadIsNotNoEntries(t *testing.T) {
	r := startedWithG1(t)
	before := r.k.Writes()
	var mu sync.Mutex
	fail := 2
	r.k.FailWith(func(c kerneltest.Call) error {
		mu.Lock()
		defer mu.Unlock()
		if slices.Contains([]string{"Entries", "PortEntries", "BridgeEntries"}, c.Method) && fail > 0 {
			fail--
			return kerneltest.Injected(c)
		}
		return nil
	})
	r.emit(Event{Guest: "g1", Why: "test"})
	r.waitFor("g1 still managed", r.managed("vnet1", mac1))
	if n := r.k.Writes() - before; n != 0 {
		t.Errorf("%d writes after failed FDB reads, want none: %v", n, r.k.WriteLog())
	}
	if fail != 0 || !strings.Contains(r.log.String(), "injected failure") {
		t.Errorf("the failed reads were not tried and reported (%d left); log:\n%s", fail, r.log)
	}
}

// TestStartupCleaning: at start-up the watcher deletes what reconcile
// calls stale (an entry on a tap no running guest owns and no process
// holds, a defined guest's MAC on the uplink while it is not running) and
// leaves alone what it cannot attribute.
func TestStartupCleaning(t *testing.T) {
	const macDefined, macUnknown, macHeld = "52:54:00:00:00:0d", "52:54:00:00:00:0e", "52:54:00:00:00:0f"
	r := newRig(t, twoBridges)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.orphan()
	r.k.Add(kerneltest.Tap("vnet8", "br0", kerneltest.Managed)) // held open: a guest starting?
	r.k.AddStatic(macHeld, "vnet8")
	r.k.AddStatic(macDefined, "eth0")
	r.k.AddStatic(macUnknown, "eth0")
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	g7 := lab.Domain{Name: "g7", NICs: lab.BridgeNICs("br0", "/"+macDefined)}
	os.WriteFile(filepath.Join(r.dir, "etc/qemu/g7.xml"), []byte(g7.XML()), 0o600)
	r.start()
	for mac, want := range map[string][]string{mac1: {"vnet1"}, mac9: nil, macDefined: nil, macUnknown: {"eth0"}, macHeld: {"vnet8"}} {
		if got := r.k.Static(mac); !slices.Equal(got, want) {
			t.Errorf("static entries for %s on %v, want %v", mac, got, want)
		}
	}
	if f, _ := r.k.Flags("vnet9"); f != kerneltest.Learning {
		t.Errorf("the orphan tap vnet9 has %v after its entry went, want learning and flooding back", f)
	}
}

// TestCleaningWithNoGuestRunning: a resync cleans stale entries even when
// no guest runs, so it has no guest to reconcile: at start-up, and at the
// resync timer for what a guest left behind after the watcher started.
func TestCleaningWithNoGuestRunning(t *testing.T) {
	r := newRig(t, twoBridges)
	r.orphan()
	r.start()
	if got := r.k.Static(mac9); len(got) != 0 {
		t.Fatalf("after start-up with no guest running, the stale entry for %s is on %v, want deleted; log:\n%s", mac9, got, r.log)
	}
	if r.resyncs != 1 {
		t.Errorf("start-up made %d resyncs, want 1", r.resyncs)
	}
	// A guest stopped while nothing told the watcher: its tap and entry
	// are left; only the timer's resync finds them.
	left := kerneltest.Tap("vnet7", "br0", kerneltest.Managed)
	left.Carrier = false
	r.k.Add(left)
	r.k.AddStatic(mac2, "vnet7")
	r.clock.Advance(time.Minute)
	r.settle()
	if r.resyncs != 2 {
		t.Fatalf("no resync a minute after start-up (%d in all); log:\n%s", r.resyncs, r.log)
	}
	if got := r.k.Static(mac2); len(got) != 0 {
		t.Errorf("after the timer's resync with no guest running, the stale entry for %s is on %v, want deleted; log:\n%s", mac2, got, r.log)
	}
}

// TestResumeDecidesEntries: a guest whose live XML says it started or
// resumed since the watcher last read it gets its entry back on its own
// tap from where it roamed, whatever hints came and in any order; hints
// alone (a lifecycle event, a port, a resync) with the live XML as before
// leave the roam, and so does a resume the live XML does not show yet.
func TestResumeDecidesEntries(t *testing.T) {
	nic := "br0:vnet1:" + mac1
	for _, tc := range []struct {
		name string
		do   func(r *rig)
		back bool
	}{
		{"hints only", func(r *rig) {
			for _, e := range []Event{{Guest: "g1"}, {Port: "eth0"}, {Port: "vnet1"}, {Resync: true}} {
				r.emit(e)
			}
		}, false},
		{"paused, then resumed", func(r *rig) { r.resumed("g1", nic) }, true},
		{"paused and resumed between two looks", func(r *rig) {
			r.guest("g1", "running:unpaused", nic)
			r.emit(Event{Port: "vnet1"})
		}, true},
		{"restarted between two looks", func(r *rig) {
			os.WriteFile(filepath.Join(r.dir, "run/qemu/g1.xml"), []byte(liveXMLPid("g1", 2, nic)), 0o600)
			r.emit(Event{Resync: true})
		}, true},
		{"resumed, hints and a resync merged", func(r *rig) {
			r.resumed("g1", nic)
			r.emit(Event{Port: "vnet1"})
			r.emit(Event{Resync: true})
		}, true},
		{"a resume event before the live XML shows it", func(r *rig) {
			r.guest("g1", "paused:user", nic)
			r.emit(Event{Guest: "g1", Why: "lifecycle Suspended"})
			r.settle()
			r.emit(Event{Guest: "g1", Why: "lifecycle Resumed"})
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startedWithG1(t)
			r.k.AddStatic(mac1, "eth0")
			tc.do(r)
			r.settle()
			got := r.k.Static(mac1)
			if back := slices.Equal(got, []string{"vnet1"}); back != tc.back {
				t.Errorf("entry on %v; want it back on vnet1: %v", got, tc.back)
			}
		})
	}
}

// liveXMLPid is liveXML of a running guest whose QEMU process is pid.
func liveXMLPid(name string, pid int, nics ...string) string {
	return strings.Replace(liveXML(name, "running", nics...), "pid='1'", fmt.Sprintf("pid='%d'", pid), 1)
}

// TestIncomingMarkDecisions: a guest marked as arriving by live migration
// gets no entries while its live XML says it is paused, whatever the hint
// (libvirt's "started, migrated" and "resumed, migrated" come while the
// live XML may still say paused), and the ports of its "start begin"
// (flooding off, learning on); it gets its entries, and its mark is
// cleared, once its live XML says it runs.
func TestIncomingMarkDecisions(t *testing.T) {
	incoming := model.Flags{Learning: true}
	for _, tc := range []struct {
		name    string
		state   string
		phase   runstate.Phase
		entries bool
	}{
		{"paused", "paused:migration/migration in", runstate.Pending, false},
		{"paused, incoming phase", "paused:starting up", runstate.Incoming, false},
		{"paused by the user", "paused:user", runstate.Pending, false},
		{"running", "running:migrated", runstate.Pending, true},
		{"running post-copy", "running:postcopy/migration in", runstate.Pending, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, twoBridges)
			r.k.Add(kerneltest.Tap("vnet1", "br0", incoming))
			r.guest("g1", tc.state, "br0:vnet1:"+mac1)
			r.runDir.PutMark(runstate.Mark{Guest: "g1", Phase: tc.phase, Since: epoch})
			r.start()
			for _, why := range []string{"lifecycle Started detail 1", "lifecycle Resumed detail 1", "test"} {
				r.emit(Event{Guest: "g1", Why: why})
				r.settle()
			}
			_, marked, _ := r.runDir.GetMark("g1")
			if tc.entries {
				if !r.managed("vnet1", mac1)() || marked {
					t.Errorf("vnet1 managed %v, mark left %v; want the full start and the mark cleared", r.managed("vnet1", mac1)(), marked)
				}
				return
			}
			if f, _ := r.k.Flags("vnet1"); f != incoming || len(r.k.Static(mac1)) != 0 || !marked {
				t.Errorf("vnet1 has %v, entries %v, mark left %v; want %v, none, and the mark", f, r.k.Static(mac1), marked, incoming)
			}
			r.guest("g1", "running:migrated", "br0:vnet1:"+mac1)
			r.emit(Event{Guest: "g1", Why: "test: live XML rewritten"})
			r.waitFor("entries once the live XML says it runs", r.managed("vnet1", mac1))
			if _, marked, _ := r.runDir.GetMark("g1"); marked {
				t.Error("the mark is left once the guest runs here")
			}
		})
	}
}

// TestStoppedGuestIsForgotten: what the watcher remembers of a guest (a
// failure logged) goes with its stop, so that the same failure after its
// next start is logged again; without a stop it is logged once.
func TestStoppedGuestIsForgotten(t *testing.T) {
	r := startedWithG1(t)
	gone := "br0:vnet5:" + mac2 // a NIC whose tap does not exist: refused
	failures := func() int { return strings.Count(r.log.String(), "error: guest g1:") }
	r.guest("g1", "running", "br0:vnet1:"+mac1, gone)
	r.emit(Event{Guest: "g1", Why: "test: hotplug"})
	r.settle()
	r.emit(Event{Resync: true, Why: "test"})
	r.settle()
	if n := failures(); n != 1 {
		t.Fatalf("failure logged %d times, want once:\n%s", n, r.log)
	}
	os.Remove(filepath.Join(r.dir, "run/qemu/g1.xml"))
	r.emit(Event{Guest: "g1", Why: "test: stopped"})
	r.settle()
	r.guest("g1", "running", "br0:vnet1:"+mac1, gone)
	r.emit(Event{Guest: "g1", Why: "test: started again"})
	r.settle()
	if n := failures(); n != 2 {
		t.Errorf("the failure after the restart logged %d times in all, want twice:\n%s", n, r.log)
	}
}

// TestRoamReportedOncePerPlace: a roam is reported once while it lasts;
// the entry moving on to another port is a new roam, reported again, and
// so is a roam that ended and came back.
func TestRoamReportedOncePerPlace(t *testing.T) {
	r := startedWithG1(t)
	r.k.Add(kerneltest.Uplink("eth1", "br0"))
	hint := func() {
		r.emit(Event{Guest: "g1", Why: "test"})
		r.settle()
	}
	count := func() int { return strings.Count(r.log.String(), "duplicate or a spoof") }
	r.k.AddStatic(mac1, "eth0")
	hint()
	hint()
	if n := count(); n != 1 {
		t.Fatalf("a lasting roam reported %d times, want once", n)
	}
	r.k.AddStatic(mac1, "eth1")
	hint()
	if n := count(); n != 2 || !strings.Contains(r.log.String(), "is on eth1") {
		t.Fatalf("the roam on to eth1 reported %d times in all, want twice:\n%s", n, r.log)
	}
	r.resumed("g1", "br0:vnet1:"+mac1)
	r.settle()
	hint()
	r.k.AddStatic(mac1, "eth0")
	hint()
	if n := count(); n != 3 {
		t.Errorf("a roam that ended and came back reported %d times in all, want 3:\n%s", n, r.log)
	}
}

// entryOf returns the static entry for mac on port, or fails.
func (r *rig) entryOf(mac, port string) model.Entry {
	r.t.Helper()
	for _, e := range r.k.AllEntries() {
		if e.MAC == mac && e.Port == port && e.Vlan == 0 {
			return e
		}
	}
	r.t.Fatalf("no entry for %s on %s: %v", mac, port, r.k.AllEntries())
	return model.Entry{}
}

// TestEntryNotQuiteInPlace: an entry on the guest's own port that is not
// what a start writes (not sticky where the bridge says sticky, learned by
// a controller with extern_learn) is written again; one that is exactly
// right is not.
func TestEntryNotQuiteInPlace(t *testing.T) {
	r := newRig(t, twoBridges+"[bridge.br0]\nsticky = true\n")
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.start()
	if e := r.entryOf(mac1, "vnet1"); e.NTFlags&model.NTFSticky == 0 {
		t.Fatalf("the start wrote %v, want a sticky entry", e)
	}
	for _, tc := range []struct {
		name  string
		entry model.Entry
	}{
		{"not sticky", model.Entry{MAC: mac1, Port: "vnet1", State: model.NUDNoARP, NTFlags: model.NTFMaster}},
		{"extern_learn", model.Entry{MAC: mac1, Port: "vnet1", State: model.NUDNoARP, NTFlags: model.NTFMaster | model.NTFSticky | model.NTFExtLearn}},
	} {
		r.k.DelStatic(mac1, "vnet1")
		r.k.AddEntry(tc.entry)
		before := r.k.Writes()
		r.emit(Event{Guest: "g1", Why: "test: " + tc.name})
		r.settle()
		e := r.entryOf(mac1, "vnet1")
		if r.k.Writes() == before || e.NTFlags&model.NTFSticky == 0 || e.NTFlags&model.NTFExtLearn != 0 {
			t.Errorf("%s: entry now %v after %d writes, want it written again sticky and ours", tc.name, e, r.k.Writes()-before)
		}
	}
	before := r.k.Writes()
	r.emit(Event{Guest: "g1", Why: "test: nothing wrong"})
	r.settle()
	if n := r.k.Writes() - before; n != 0 {
		t.Errorf("an entry in place was written again (%d writes)", n)
	}
}

// TestNothingManagedWritesNothing: without a configuration, or with one
// that lists no bridge or network, the watcher changes nothing, however
// the guests' ports look.
func TestNothingManagedWritesNothing(t *testing.T) {
	for _, cfg := range []string{"", "bridges = []\n"} {
		r := newRig(t, cfg)
		if cfg == "" {
			os.Remove(r.cfgPath)
		}
		r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
		r.orphan()
		r.guest("g1", "running", "br0:vnet1:"+mac1)
		r.start()
		r.emit(Event{Guest: "g1", Why: "test"})
		r.emit(Event{Resync: true, Why: "test"})
		r.settle()
		if n := r.k.Writes(); n != 0 {
			t.Errorf("configuration %q: %d writes: %v", cfg, n, r.k.WriteLog())
		}
	}
}
