package watch

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	"github.com/fdbhook/fdbhook/test/lab"
)

const (
	mac1 = "52:54:00:00:00:01"
	mac2 = "52:54:00:00:00:02"
	mac9 = "52:54:00:00:00:09"
)

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

// rig is a watcher over a fake kernel and a fake libvirt directory, on a
// fake clock, driven by the test step by step: events go straight into
// its queue (emit), and the test runs what is due (step), or everything
// until the watcher is idle, moving the clock to each due time (settle).
// Nothing runs in a goroutine of its own.
type rig struct {
	t       *testing.T
	k       *kerneltest.Kernel
	dir     string
	cfgPath string
	runDir  runstate.Dir
	clock   *fakeClock
	log     *syncBuf
	w       *Watcher
	// release gives up the lock start took.
	release func()
	batches int
	resyncs int
	// reconciled lists the guests each batch brought in line.
	reconciled [][]string
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
		runDir: runstate.Dir(filepath.Join(dir, "fdbhook")), clock: newFakeClock(), log: &syncBuf{}}
	r.config(cfg)
	r.k.Add(&model.Link{Name: "lo", Type: "device"})
	for _, br := range []string{"br0", "br1", "br2"} {
		r.k.Add(kerneltest.Bridge(br))
	}
	r.k.Add(kerneltest.Uplink("eth0", "br0"))
	lg := logrus.New()
	lg.Out, lg.Level, lg.Formatter = r.log, logrus.DebugLevel, logFormat
	h := host.FromEnv(func(key string) string {
		return map[string]string{host.EnvLibvirtRun: filepath.Join(dir, "run"), host.EnvLibvirtEtc: filepath.Join(dir, "etc")}[key]
	})
	h.Config, h.RunDir, h.Lock, h.LockTimeout = r.cfgPath, r.runDir, filepath.Join(dir, "fdbhook/lock"), time.Second
	h.Libvirt.ProcDir = filepath.Join(dir, "proc")
	r.w = &Watcher{
		Log:        lg,
		Host:       h,
		OpenKernel: func() (model.Kernel, error) { return r.k, nil },
		Backoff:    20 * time.Millisecond,
		Clock:      r.clock,
		Processed: func(guests []string, resync bool) {
			r.batches++
			if resync {
				r.resyncs++
			}
			r.reconciled = append(r.reconciled, guests)
		},
	}
	return r
}

func (r *rig) config(text string) {
	r.t.Helper()
	if err := os.WriteFile(r.cfgPath, []byte(text), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// liveXML is a running guest's live XML as libvirt writes it; nics are
// "bridge:target:mac". state is "STATE[:REASON][/JOB]": libvirt's state
// and its reason (booted when none), and <job async='JOB'> (e.g.
// "paused:migration/migration in").
func liveXML(name, state string, nics ...string) string {
	state, job, _ := strings.Cut(state, "/")
	state, reason, _ := strings.Cut(state, ":")
	d := lab.Domain{Name: name}
	for _, n := range nics {
		f := strings.SplitN(n, ":", 3)
		d.NICs = append(d.NICs, lab.NIC{Bridge: f[0], Target: f[1], MAC: f[2], Alias: "-"})
	}
	return d.Live(lab.Status{State: state, Reason: reason, Pid: 1, Job: job})
}

// guest writes a running guest's live XML (liveXML) as libvirt does: a
// new file renamed over the old one.
func (r *rig) guest(name, state string, nics ...string) {
	r.t.Helper()
	path := filepath.Join(r.dir, "run/qemu", name+".xml")
	if err := os.WriteFile(path+".new", []byte(liveXML(name, state, nics...)), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		r.t.Fatal(err)
	}
}

// resumed writes guest name's live XML as libvirt does when it pauses the
// guest and then resumes it, each with its hint, settling in between.
func (r *rig) resumed(name string, nics ...string) {
	r.t.Helper()
	r.guest(name, "paused:user", nics...)
	r.emit(Event{Guest: name, Why: "test: paused"})
	r.settle()
	r.guest(name, "running:unpaused", nics...)
	r.emit(Event{Guest: name, Why: "test: resumed"})
}

// start opens the watcher (its lock, the configuration, the start-up
// resync) and runs it until it is idle.
func (r *rig) start() {
	r.t.Helper()
	release, err := r.w.open()
	if err != nil {
		r.t.Fatalf("open: %v", err)
	}
	r.release = release
	r.t.Cleanup(release)
	r.settle()
}

func (r *rig) emit(e Event) { r.w.emit(e) }

// step works on what is due now, without moving the clock; it reports
// whether there was anything.
func (r *rig) step() bool {
	b, _ := r.w.q.take(r.clock.Now())
	if b.empty() {
		return false
	}
	r.w.work(context.Background(), b)
	return true
}

// settle runs the watcher until nothing waits in its queue but the resync
// timer, moving the clock to each key's (or retried resync's) due time.
func (r *rig) settle() {
	r.t.Helper()
	for range 1000 {
		if r.step() {
			continue
		}
		due, ok := r.w.q.nextDue()
		if !ok {
			return
		}
		r.clock.AdvanceTo(due)
	}
	r.t.Fatalf("the watcher is still busy after 1000 batches; log:\n%s", r.log.String())
}

// waitFor settles the watcher and checks cond.
func (r *rig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	r.settle()
	if !cond() {
		r.t.Fatalf("not so once the watcher settled: %s; log:\n%s", what, r.log.String())
	}
}

// orphan adds tap vnet9 on br0, managed, which no running guest names and
// no process holds open, with a static entry for mac9: what a guest that
// is gone left behind.
func (r *rig) orphan() {
	orphan := kerneltest.Tap("vnet9", "br0", kerneltest.Managed)
	orphan.Carrier = false
	r.k.Add(orphan)
	r.k.AddStatic(mac9, "vnet9")
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
	r.orphan()
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.start()
	r.waitFor("g1 managed", r.managed("vnet1", mac1))
	r.waitFor("the stale entry on vnet9 deleted", func() bool { return len(r.k.Static(mac9)) == 0 })
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
	r.clock.Advance(r.w.Debounce)
	if !r.step() {
		t.Fatal("the port's event was not due after the debounce")
	}
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
	r.resumed("g1", "br0:vnet1:"+mac1)
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
	r.guest("g1", "running:migrated", "br0:vnet1:"+mac1)
	r.emit(Event{Guest: "g1", Why: "test: live XML rewritten at the resume"})
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
	c := newFakeClock()
	q := newQueue(10*time.Millisecond, c)
	for i := 0; i < 100; i++ {
		q.add(key{name: "g1"}, "burst")
	}
	q.add(key{name: "g2"}, "other")
	c.Advance(10 * time.Millisecond)
	b, _ := q.take(c.Now())
	if len(b.items) != 2 || b.items[key{name: "g1"}].why != "burst" {
		t.Fatalf("batch = %+v; want g1 and g2 once each", b.items)
	}
	if q.len() != 0 {
		t.Fatalf("%d keys left", q.len())
	}
}

// TestLifecycleHints: a lifecycle event names its guest and says what it
// was, and nothing more: the worker reads the rest from the live XML.
func TestLifecycleHints(t *testing.T) {
	for _, c := range []struct {
		ev, detail int32
		want       string
	}{{2, 0, "Started"}, {2, 1, "Started"}, {4, 1, "Resumed"}, {3, 0, "Suspended"}, {5, 0, "Stopped"}} {
		e := lifecycleEvent("g", c.ev, c.detail)
		if e != (Event{Guest: "g", Why: e.Why}) || !strings.Contains(e.Why, c.want) {
			t.Errorf("lifecycle %d/%d -> %+v, want a hint for g saying %s", c.ev, c.detail, e, c.want)
		}
	}
}

func TestIdleResyncWritesNothing(t *testing.T) {
	r := startedWithG1(t)
	r.settle()
	before := r.k.Writes()
	r.emit(Event{Resync: true, Why: "test: timer"})
	r.emit(Event{Guest: "g1", Why: "test: lifecycle resumed"})
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
