package watch

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

const (
	mac1 = "52:54:00:00:00:01"
	mac2 = "52:54:00:00:00:02"
	mac9 = "52:54:00:00:00:09"
)

// hand is a Source the test drives.
type hand struct {
	ready chan struct{}
	once  sync.Once
	fn    func(Event)
}

func (h *hand) Name() string { return "test" }
func (h *hand) Run(ctx context.Context, emit func(Event)) {
	h.fn = emit
	h.once.Do(func() { close(h.ready) })
	<-ctx.Done()
}

// syncBuf is a log buffer the worker writes while the test reads.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type rig struct {
	t       *testing.T
	k       *kerneltest.Kernel
	dir     string
	cfgPath string
	runDir  runstate.Dir
	src     *hand
	log     *syncBuf
	w       *Watcher
	stop    context.CancelFunc
	done    chan error
	mu      sync.Mutex
	batches int
	resyncs int
}

// newRig builds a host: br0 and br1 managed (br2 not), uplink eth0 on
// br0, and whatever setup adds; the watcher starts with start.
func newRig(t *testing.T, cfg string) *rig {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"run/qemu", "etc/qemu", "fdbhook"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	r := &rig{t: t, k: kerneltest.New(), dir: dir, cfgPath: filepath.Join(dir, "fdbhook.toml"),
		runDir: runstate.Dir(filepath.Join(dir, "fdbhook")), src: &hand{ready: make(chan struct{})}, log: &syncBuf{}}
	r.config(cfg)
	r.k.Add(&model.Link{Name: "lo", Type: "device"})
	for _, br := range []string{"br0", "br1", "br2"} {
		r.k.Add(kerneltest.Bridge(br))
	}
	r.k.Add(kerneltest.Uplink("eth0", "br0"))
	return r
}

func (r *rig) config(text string) {
	r.t.Helper()
	if err := os.WriteFile(r.cfgPath, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// guest writes a running guest's live XML, as libvirt does (a rename);
// nics are "bridge:target:mac". A state "STATE/JOB" adds libvirt's
// <job async='JOB'> (e.g. "paused/migration out").
func (r *rig) guest(name, state string, nics ...string) {
	r.t.Helper()
	var b strings.Builder
	state, job, _ := strings.Cut(state, "/")
	fmt.Fprintf(&b, "<domstatus state='%s' reason='booted' pid='1'>", state)
	if job != "" {
		fmt.Fprintf(&b, "<job type='none' async='%s'/>", job)
	}
	fmt.Fprintf(&b, "<domain type='qemu'><name>%s</name><devices>", name)
	for i, n := range nics {
		f := strings.SplitN(n, ":", 3)
		fmt.Fprintf(&b, "<interface type='bridge'><mac address='%s'/><source bridge='%s'/><target dev='%s'/><alias name='net%d'/></interface>", f[2], f[0], f[1], i)
	}
	b.WriteString("</devices></domain></domstatus>")
	path := filepath.Join(r.dir, "run/qemu", name+".xml")
	if err := os.WriteFile(path+".new", []byte(b.String()), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) start() {
	r.t.Helper()
	lg := logrus.New()
	lg.Out, lg.Level, lg.Formatter = r.log, logrus.DebugLevel, logFormat
	r.w = &Watcher{
		Log:        lg,
		ConfigPath: r.cfgPath,
		Libvirt: libvirt.Paths{NetworkDirs: []string{filepath.Join(r.dir, "run/network")}, QemuRunDir: filepath.Join(r.dir, "run/qemu"),
			LxcRunDir: filepath.Join(r.dir, "run/lxc"), ProcDir: filepath.Join(r.dir, "proc")},
		LibvirtEtc:  filepath.Join(r.dir, "etc"),
		RunDir:      r.runDir,
		LockPath:    filepath.Join(r.dir, "fdbhook/lock"),
		LockTimeout: time.Second,
		OpenKernel:  func() (model.Kernel, error) { return r.k, nil },
		Sources:     []Source{r.src},
		Backoff:     20 * time.Millisecond,
		Processed: func(_ []string, resync bool) {
			r.mu.Lock()
			r.batches++
			if resync {
				r.resyncs++
			}
			r.mu.Unlock()
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stop, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.w.Run(ctx) }()
	select {
	case <-r.src.ready:
	case err := <-r.done:
		r.t.Fatalf("Run ended at once: %v", err)
	case <-time.After(2 * time.Second):
		r.t.Fatal("the watcher did not start its sources")
	}
	r.t.Cleanup(r.shutdown)
	r.waitFor("the start-up resync", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.resyncs > 0 })
}

func (r *rig) shutdown() {
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run: %v", err)
		}
	case <-time.After(time.Second):
		r.t.Error("Run did not return within a second of its context ending")
	}
}

func (r *rig) emit(e Event) { r.src.fn(e) }

// waitFor polls cond for up to two seconds.
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; log:\n%s", what, r.log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits until the watcher has been idle for a while, so that a
// test can check that something did NOT happen.
func (r *rig) settle() {
	r.t.Helper()
	time.Sleep(150 * time.Millisecond)
	for r.w.q.len() > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
}

func (r *rig) managed(port, mac string) func() bool {
	return func() bool {
		f, ok := r.k.Flags(port)
		return ok && f == kerneltest.Managed && slices.Equal(r.k.Static(mac), []string{port})
	}
}

const twoBridges = "bridges = [\"br0\", \"br1\"]\n"

// startedWithG1 is a rig managing br0 and br1 with guest g1 running on
// vnet1 (br0), and the watcher started and done managing it.
func startedWithG1(t *testing.T) *rig {
	t.Helper()
	r := newRig(t, twoBridges)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.start()
	r.waitFor("g1 managed", r.managed("vnet1", mac1))
	return r
}

func TestStartupManagesRunningGuestsAndCleansStale(t *testing.T) {
	r := newRig(t, twoBridges)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	orphan := kerneltest.Tap("vnet9", "br0", kerneltest.Managed)
	orphan.Carrier = false
	r.k.Add(orphan)
	r.k.AddStatic(mac9, "vnet9")
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.start()
	r.waitFor("g1 managed", r.managed("vnet1", mac1))
	r.waitFor("the stale entry on vnet9 deleted", func() bool { return len(r.k.Static(mac9)) == 0 })
	if w, running, _ := r.runDir.WatcherRunning(); !running || w.PID != os.Getpid() {
		t.Errorf("watcher lock while running: %+v running=%v", w, running)
	}
	r.shutdown()
	if _, running, _ := r.runDir.WatcherRunning(); running {
		t.Error("the watcher lock is still held after Run returned")
	}
}

func TestHealsDrift(t *testing.T) {
	r := startedWithG1(t)

	r.k.SetFlags("vnet1", kerneltest.Learning)
	r.emit(Event{Port: "vnet1", Why: "test: learning on"})
	r.waitFor("learning and flood off again", r.managed("vnet1", mac1))

	idx := r.k.Index("vnet1")
	r.k.DelStatic(mac1, "vnet1")
	r.emit(Event{PortIndex: idx, Why: "test: entry deleted"})
	r.waitFor("the entry back", r.managed("vnet1", mac1))
}

func TestHotplugBeforeLiveXML(t *testing.T) {
	r := startedWithG1(t)

	// libvirt creates and enslaves the tap, then QEMU adds the device,
	// then the live XML is rewritten: the port event comes first and
	// names a tap no guest has yet.
	r.k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Learning))
	r.emit(Event{Port: "vnet2", Why: "test: tap created"})
	time.Sleep(30 * time.Millisecond)
	if f, _ := r.k.Flags("vnet2"); f != kerneltest.Learning {
		t.Fatalf("vnet2 changed before any guest named it: %v", f)
	}
	r.guest("g1", "running", "br0:vnet1:"+mac1, "br0:vnet2:"+mac2)
	// No event for the file: the port's retry must find its guest.
	r.waitFor("the hotplugged NIC managed", r.managed("vnet2", mac2))
	if !r.managed("vnet1", mac1)() {
		t.Error("the first NIC lost its state")
	}

	// Unplug: libvirt deletes the tap (the kernel takes its entries) and
	// rewrites the XML. Nothing of vnet2 is left, and g1 is not failing.
	r.k.Delete("vnet2")
	r.emit(Event{Port: "vnet2", Why: "test: tap deleted"})
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.emit(Event{Guest: "g1", Why: "test: device removed"})
	r.settle()
	if got := r.k.Static(mac2); len(got) != 0 {
		t.Errorf("entries for the unplugged NIC: %v", got)
	}
	if strings.Contains(r.log.String(), "error") {
		t.Errorf("errors logged:\n%s", r.log)
	}
}

func TestMoveBetweenBridges(t *testing.T) {
	r := startedWithG1(t)

	r.k.Move("vnet1", "br1")
	r.guest("g1", "running", "br1:vnet1:"+mac1)
	r.emit(Event{Port: "vnet1", Why: "test: moved"})
	r.waitFor("vnet1 managed on br1", r.managed("vnet1", mac1))

	r.k.Move("vnet1", "br2")
	r.guest("g1", "running", "br2:vnet1:"+mac1)
	r.emit(Event{Port: "vnet1", Why: "test: moved"})
	r.settle()
	if f, _ := r.k.Flags("vnet1"); f != kerneltest.Learning {
		t.Errorf("vnet1 on unmanaged br2 has %v, want the kernel's defaults", f)
	}
	if got := r.k.Static(mac1); len(got) != 0 {
		t.Errorf("static entries left after the move to an unmanaged bridge: %v", got)
	}
}

func TestRoamReportedNotReverted(t *testing.T) {
	r := startedWithG1(t)

	r.k.AddStatic(mac1, "eth0") // a frame from the guest's MAC came in on the uplink
	r.emit(Event{Port: "eth0", Why: "test: roam"})
	r.emit(Event{Guest: "g1", Why: "test: something else"})
	r.waitFor("the roam reported", func() bool { return strings.Contains(r.log.String(), "duplicate or a spoof") })
	r.settle()
	if got := r.k.Static(mac1); !slices.Equal(got, []string{"eth0"}) {
		t.Fatalf("roamed entry moved back while the guest runs: on %v", got)
	}
	r.emit(Event{Guest: "g1", Trigger: Started, Why: "test: resumed"})
	r.waitFor("the entry back on the guest's tap after a resume", r.managed("vnet1", mac1))
}

// TestOutgoingMigrationRoam: on the source of a live migration, the
// guest's announcement from the destination moves its entry to the
// uplink. That is said once, as information, not as a duplicate or a
// spoof, and the entry is left there for the stop to remove.
func TestOutgoingMigrationRoam(t *testing.T) {
	r := startedWithG1(t)

	r.guest("g1", "paused/migration out", "br0:vnet1:"+mac1)
	r.k.AddStatic(mac1, "eth0")
	r.emit(Event{Port: "eth0", Why: "test: roam"})
	r.emit(Event{Guest: "g1", Why: "test: live XML rewritten"})
	r.waitFor("the move reported", func() bool { return strings.Contains(r.log.String(), "migrating away") })
	r.emit(Event{Guest: "g1", Why: "test: something else"})
	r.settle()
	if got := r.k.Static(mac1); !slices.Equal(got, []string{"eth0"}) {
		t.Errorf("the entry that moved with the migration was moved back: on %v", got)
	}
	if n := strings.Count(r.log.String(), "migrating away"); n != 1 {
		t.Errorf("the move was reported %d times, want once:\n%s", n, r.log)
	}
	if strings.Contains(r.log.String(), "warning") || strings.Contains(r.log.String(), "spoof") {
		t.Errorf("a migration's move logged as a problem:\n%s", r.log)
	}
}

func TestIncomingMigration(t *testing.T) {
	r := newRig(t, twoBridges)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.guest("g1", "paused", "br0:vnet1:"+mac1)
	if err := r.runDir.PutMark(runstate.Mark{Guest: "g1", Phase: runstate.Pending, Since: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r.start()
	// What its "start begin" gives it: flooding off, learning on, so that
	// the guest's announcement at the resume is learned before the resume
	// event reaches the watcher.
	incoming := model.Flags{Learning: true}
	r.waitFor("flood off, learning on", func() bool { f, _ := r.k.Flags("vnet1"); return f == incoming })
	r.emit(Event{Guest: "g1", Why: "test: started migrated"})
	r.emit(Event{Resync: true, Why: "test: resync"})
	r.settle()
	if got := r.k.Static(mac1); len(got) != 0 {
		t.Fatalf("a guest paused for an incoming migration got entries: %v", got)
	}
	if f, _ := r.k.Flags("vnet1"); f != incoming {
		t.Fatalf("a guest paused for an incoming migration: its port has %v, want %v", f, incoming)
	}
	if _, ok, _ := r.runDir.GetMark("g1"); !ok {
		t.Fatal("the mark was cleared before the resume")
	}
	r.emit(Event{Guest: "g1", Trigger: Migrated, Why: "test: resumed migrated"})
	r.waitFor("entries at the resume", r.managed("vnet1", mac1))
	r.waitFor("the mark cleared", func() bool { _, ok, _ := r.runDir.GetMark("g1"); return !ok })
}

func TestMissedResumeHealsOnResync(t *testing.T) {
	r := newRig(t, twoBridges)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Managed))
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.runDir.PutMark(runstate.Mark{Guest: "g1", Phase: runstate.Pending, Since: time.Now()})
	r.start()
	r.waitFor("entries of a marked guest that runs", r.managed("vnet1", mac1))
	r.waitFor("the mark cleared", func() bool { _, ok, _ := r.runDir.GetMark("g1"); return !ok })
}

func TestConfigReload(t *testing.T) {
	r := newRig(t, "bridges = [\"br0\"]\n")
	r.k.Add(kerneltest.Tap("vnet1", "br1", kerneltest.Learning))
	r.guest("g1", "running", "br1:vnet1:"+mac1)
	r.start()
	r.settle()
	if f, _ := r.k.Flags("vnet1"); f != kerneltest.Learning {
		t.Fatalf("vnet1 on unmanaged br1 changed: %v", f)
	}
	r.config("bridges = [\"br0\", \"br1\"\n") // broken: the old one stays
	r.emit(Event{Reload: true, Why: "test: SIGHUP"})
	r.waitFor("the broken file reported", func() bool { return strings.Contains(r.log.String(), "keeping the previous one") })
	r.config(twoBridges)
	r.emit(Event{Reload: true, Why: "test: SIGHUP"})
	r.waitFor("vnet1 managed after the reload", r.managed("vnet1", mac1))
}

func TestRefusedGuestIsRetriedThenLoggedOnce(t *testing.T) {
	r := newRig(t, twoBridges)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning))
	r.k.Add(kerneltest.Tap("vnet2", "br0", kerneltest.Managed))
	r.k.AddStatic(mac1, "vnet2") // another guest's port has g1's MAC
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.guest("g2", "running", "br0:vnet2:"+mac1)
	r.start()
	r.waitFor("the refusal logged", func() bool { return strings.Contains(r.log.String(), "error: guest g1:") })
	if f, _ := r.k.Flags("vnet1"); f != kerneltest.Learning {
		t.Errorf("a refused guest was half applied: vnet1 has %v", f)
	}
	r.emit(Event{Resync: true, Why: "test"})
	r.settle()
	if n := strings.Count(r.log.String(), "error: guest g1:"); n != 1 {
		t.Errorf("the same refusal logged %d times, want once:\n%s", n, r.log)
	}
}

func TestBurstIsOneReconcile(t *testing.T) {
	q := newQueue(10*time.Millisecond, time.Now)
	for i := 0; i < 100; i++ {
		q.add(key{name: "g1"}, Changed, "burst")
	}
	q.add(key{name: "g1"}, Started, "resume")
	q.add(key{name: "g2"}, Changed, "other")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	b, ok := q.next(ctx, nil)
	if !ok || len(b.items) != 2 || b.items[key{name: "g1"}].trigger != Started {
		t.Fatalf("batch = %+v, %v; want g1 (started) and g2 once each", b.items, ok)
	}
	if q.len() != 0 {
		t.Fatalf("%d keys left", q.len())
	}
}

func TestLifecycleMapping(t *testing.T) {
	for _, c := range []struct {
		ev, detail int32
		want       Trigger
	}{
		{2, 0, Started},  // started booted
		{2, 1, Changed},  // started migrated: still paused, the mark decides
		{4, 0, Started},  // resumed unpaused
		{4, 1, Migrated}, // resumed migrated
		{4, 3, Migrated}, // resumed post-copy
		{3, 0, Changed},  // suspended
		{5, 0, Changed},  // stopped
	} {
		if got := lifecycleEvent("g", c.ev, c.detail); got.Trigger != c.want || got.Guest != "g" {
			t.Errorf("lifecycle %d/%d -> %v for %q, want %v", c.ev, c.detail, got.Trigger, got.Guest, c.want)
		}
	}
}

func TestDelayedResync(t *testing.T) {
	q := newQueue(time.Millisecond, time.Now)
	q.resyncAfter(80*time.Millisecond, "retry", false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	t0 := time.Now()
	b, ok := q.next(ctx, nil)
	if !ok || !b.resync {
		t.Fatalf("batch %+v, %v: want the delayed resync", b, ok)
	}
	if d := time.Since(t0); d < 70*time.Millisecond {
		t.Fatalf("the resync came after %v, before its delay", d)
	}
}

func TestIdleResyncWritesNothing(t *testing.T) {
	r := startedWithG1(t)
	r.settle()
	before := r.k.Writes()
	r.emit(Event{Resync: true, Why: "test: timer"})
	r.emit(Event{Guest: "g1", Trigger: Started, Why: "test: resumed"})
	r.settle()
	if n := r.k.Writes() - before; n != 0 {
		t.Errorf("a resync of a managed guest wrote %d times", n)
	}
}

// TestResyncCleansStale: a stale entry that appears while the watcher runs
// (a guest gone without its stop hook, an entry written by hand) goes at
// the next resync, not only at the watcher's start.
func TestResyncCleansStale(t *testing.T) {
	r := startedWithG1(t)
	orphan := kerneltest.Tap("vnet9", "br0", kerneltest.Managed)
	orphan.Carrier = false
	r.k.Add(orphan)
	r.k.AddStatic(mac9, "vnet9")
	r.settle()
	r.emit(Event{Resync: true, Why: "test: timer"})
	r.waitFor("the stale entry on vnet9 deleted at the resync", func() bool { return len(r.k.Static(mac9)) == 0 })
	r.waitFor("vnet9 given learning and flooding back", func() bool { f, _ := r.k.Flags("vnet9"); return f == kerneltest.Learning })
}
