package manage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	"github.com/fdbhook/fdbhook/test/lab"
)

func lxcFixture(t *testing.T, name string) []byte { return lab.Recorded(t, "libvirt-9.0-lxc", name) }

// lxcHost is libvirt's LXC run directory with container fdbtlxc1 (init
// 31023, in the network namespace the host gives id 0) and fdbtlxc2,
// whose init (31099) is gone when the kernel is asked: it is stopping.
func lxcHost(t *testing.T) (HostView, *kerneltest.Kernel) {
	t.Helper()
	dir := t.TempDir()
	lxcDir := filepath.Join(dir, "lxc")
	os.MkdirAll(lxcDir, 0o755)
	live := lxcFixture(t, "run-lxc-fdbtlxc1-at-reconnect-begin.xml")
	os.WriteFile(filepath.Join(lxcDir, "fdbtlxc1.xml"), live, 0o644)
	gone := bytes.Replace(bytes.ReplaceAll(live, []byte("fdbtlxc1"), []byte("fdbtlxc2")), []byte("<init pid='31023'"), []byte("<init pid='31099'"), 1)
	if bytes.Equal(gone, live) || !bytes.Contains(gone, []byte("<init pid='31099'")) {
		t.Fatal("the fixture changed: no <init pid='31023'> to rewrite")
	}
	os.WriteFile(filepath.Join(lxcDir, "fdbtlxc2.xml"), gone, 0o644)
	k := kerneltest.New()
	k.Add(kerneltest.Bridge("fdbtlxbr0"))
	veth := kerneltest.Veth("fdbtlxv1a", "fdbtlxbr0", kerneltest.Learning)
	veth.PeerNetnsID = 0
	k.Add(veth)
	k.Add(kerneltest.Tap("vnet7", "fdbtlxbr0", kerneltest.Learning))
	k.SetNetnsID(31023, 0)
	k.FailWith(func(c kerneltest.Call) error {
		if c.Method == "NetnsIDOfPid" && c.Index == 31099 {
			return fmt.Errorf("network namespace of pid 31099: %w", os.ErrNotExist)
		}
		return nil
	})
	return HostView{Reader: k, Files: libvirt.New(libvirt.Paths{LxcRunDir: lxcDir, ProcDir: filepath.Join(dir, "proc")})}, k
}

// TestContainersOneStopping: a container whose init is gone when the
// kernel is asked (it is stopping) gets no proof and the reason, so its
// veths are refused with it; it fails neither the others' proof nor the
// whole report; a container not running at all has none either.
func TestContainersOneStopping(t *testing.T) {
	v, _ := lxcHost(t)
	got := Prove([]*guest.Guest{{Name: "fdbtlxc1", Type: "lxc"}, {Name: "fdbtlxc2", Type: "lxc"}, {Name: "vm1", Type: "kvm"}}, v)
	if ct := got.Container("fdbtlxc1"); ct.InitPid != 31023 || ct.NetnsID != 0 || ct.Unknown != "" {
		t.Errorf("fdbtlxc1: %+v, want init 31023 in namespace id 0", ct)
	}
	if ct := got.Container("fdbtlxc2"); ct.NetnsID != -1 || !strings.Contains(ct.Unknown, "pid 31099") {
		t.Errorf("fdbtlxc2 (init gone): %+v, want no namespace id and the reason", ct)
	}
	if _, proved := got["vm1"]; proved || len(got) != 2 {
		t.Errorf("proofs %v: a QEMU guest proved as a container", got)
	}
	if ct := v.Container("fdbtlxc9"); ct.NetnsID != -1 || ct.Unknown == "" {
		t.Errorf("a container not running: %+v, want no proof and the reason", ct)
	}
}

// TestStartPlanChoosesThePlanner: a container's NICs must be veths proved
// its own, a QEMU guest's taps: the same XML is planned apart by its type.
func TestStartPlanChoosesThePlanner(t *testing.T) {
	v, _ := lxcHost(t)
	cfg := &config.Config{Present: true, Bridges: []string{"fdbtlxbr0"}}
	for _, tc := range []struct {
		typ, target string
		managed     bool
	}{
		{"lxc", "fdbtlxv1a", true}, {"lxc", "vnet7", false},
		{"kvm", "vnet7", true}, {"kvm", "fdbtlxv1a", false},
	} {
		d := lab.Domain{Name: "fdbtlxc1", Type: tc.typ, NICs: lab.BridgeNICs("fdbtlxbr0", tc.target+"/52:54:00:4c:58:01")}
		g, err := guest.Parse([]byte(d.XML()))
		if err != nil {
			t.Fatal(err)
		}
		p, err := StartPlan(cfg, g, v, v)
		if err != nil {
			t.Fatalf("%s on %s: %v", tc.typ, tc.target, err)
		}
		if managed := len(p.Steps) > 0 && len(p.Refusals) == 0; managed != tc.managed {
			t.Errorf("%s guest on %s: steps %v refusals %v; want managed %v", tc.typ, tc.target, p.Steps, p.Refusals, tc.managed)
		}
	}
}

func parse(t *testing.T, xml string) *guest.Guest {
	t.Helper()
	g, err := guest.Parse([]byte(xml))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestMigration pins the migration decision for every kind of mark and
// XML, the ages on both sides of the limit with their figures.
func TestMigration(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const uuid, other = "8b7a35a8-7b1c-4b9e-9c66-0c6a7b0e1f01", "8b7a35a8-7b1c-4b9e-9c66-0c6a7b0e1f02"
	d := lab.Domain{Name: "g1", UUID: uuid}
	start := d.XML()
	live := func(state, job string) string {
		return d.Live(lab.Status{State: state, Reason: "migration", Pid: 7, Job: job})
	}
	mark := func(phase runstate.Phase, age time.Duration) *runstate.Mark {
		return &runstate.Mark{Guest: "g1", UUID: uuid, Phase: phase, Since: now.Add(-age)}
	}
	for _, tc := range []struct {
		name  string
		mark  *runstate.Mark
		xml   string
		want  Arrival
		clear bool
	}{
		{"start, no mark", nil, start, NotArriving, false},
		{"start, fresh mark", mark(runstate.Incoming, time.Second), start, Arriving, false},
		{"start, mark 10 min old", mark(runstate.Incoming, 10*time.Minute), start, Arriving, false},
		{"start, mark 10 min 1 s old", mark(runstate.Incoming, 10*time.Minute+time.Second), start, NotArriving, true},
		{"start, mark a minute ahead", mark(runstate.Incoming, -time.Minute), start, Arriving, false},
		{"start, mark 61 s ahead", mark(runstate.Incoming, -61*time.Second), start, NotArriving, true},
		{"start, pending mark", mark(runstate.Pending, time.Second), start, NotArriving, true},
		{"start, mark of another guest", &runstate.Mark{Guest: "g1", UUID: other, Phase: runstate.Incoming, Since: now}, start, NotArriving, true},
		{"start, mark without a UUID", &runstate.Mark{Guest: "g1", Phase: runstate.Incoming, Since: now}, start, Arriving, false},
		{"paused, pending mark", mark(runstate.Pending, time.Hour), live("paused", "migration in"), Arriving, false},
		{"paused, incoming mark", mark(runstate.Incoming, time.Second), live("paused", ""), Arriving, false},
		{"paused, no mark, migration in", nil, live("paused", "migration in"), Arriving, false},
		{"paused, no mark, migration out", nil, live("paused", "migration out"), NotArriving, false},
		{"paused, no mark", nil, live("paused", ""), NotArriving, false},
		{"running, pending mark", mark(runstate.Pending, time.Hour), live("running", ""), Arrived, true},
		{"running, no mark", nil, live("running", ""), NotArriving, false},
		{"running post-copy, no mark", nil, live("running", "migration in"), NotArriving, false},
		{"paused, mark of another guest, migration in", &runstate.Mark{Guest: "g1", UUID: other, Phase: runstate.Pending, Since: now},
			live("paused", "migration in"), Arriving, true},
		{"paused, mark of another guest", &runstate.Mark{Guest: "g1", UUID: other, Phase: runstate.Pending, Since: now},
			live("paused", ""), NotArriving, true},
	} {
		a, clear, why := Migration(tc.mark, parse(t, tc.xml), now)
		if a != tc.want || clear != tc.clear {
			t.Errorf("%s: %v, clear %v (%q); want %v, clear %v", tc.name, a, clear, why, tc.want, tc.clear)
		}
		if (a != NotArriving || clear) && why == "" {
			t.Errorf("%s: no reason given", tc.name)
		}
	}
}

// TestArrivalsFromLiveXML: without a migration mark, a guest is arriving
// when libvirt's live XML says it is paused as a migration's destination
// (its job, not one inside the domain); the source of a migration is not,
// and says it is migrating away.
func TestArrivalsFromLiveXML(t *testing.T) {
	none := runstate.Dir(t.TempDir())
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	const domain = `<domain type='qemu'><name>g</name></domain>`
	for _, tc := range []struct {
		name     string
		xml      string
		want     bool
		outgoing bool
	}{
		{"destination before the resume (libvirt 9.0)", `<domstatus state='paused' reason='starting up' pid='6591'>
  <taint flag='high-privileges'/>
  <job type='none' async='migration in' phase='prepare' flags='0x1' asyncStarted='1796011189918'/>` + domain + `</domstatus>`, true, false},
		{"destination, reason migration", `<domstatus state='paused' reason='migration' pid='1'><job type='none' async='migration in' phase='finish3'/>` + domain + `</domstatus>`, true, false},
		{"source of a migration", `<domstatus state='running' reason='booted' pid='6535'><job type='none' async='migration out' phase='begin3'/>` + domain + `</domstatus>`, false, true},
		{"source paused for the switch-over", `<domstatus state='paused' reason='migration' pid='1'><job type='none' async='migration out' phase='perform3'/>` + domain + `</domstatus>`, false, true},
		{"post-copy destination runs", `<domstatus state='running' reason='postcopy' pid='1'><job type='none' async='migration in' phase='finish3'/>` + domain + `</domstatus>`, false, false},
		{"paused by the user", `<domstatus state='paused' reason='user' pid='1'>` + domain + `</domstatus>`, false, false},
		{"running, no job", `<domstatus state='running' reason='booted' pid='1'>` + domain + `</domstatus>`, false, false},
		{"job inside the domain is not libvirt's", `<domstatus state='paused' reason='user' pid='1'><domain><job async='migration in'/></domain></domstatus>`, false, false},
		{"an outgoing job inside the domain is not libvirt's", `<domstatus state='running' reason='booted' pid='1'><domain><name>g</name><job async='migration out'/></domain></domstatus>`, false, false},
		{"inactive XML", domain, false, false},
		{"broken", `<domstatus state='paused'`, false, false},
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "g.xml"), []byte(tc.xml), 0o644)
		running, _, err := libvirt.ReadGuests(dir)
		if got := Arrivals(running, none, now)["g"]; err != nil || got != tc.want {
			t.Errorf("%s: incoming = %v, %v; want %v", tc.name, got, err, tc.want)
		}
		if got := len(running) == 1 && running[0].OutgoingMigration; got != tc.outgoing {
			t.Errorf("%s: outgoing = %v; want %v", tc.name, got, tc.outgoing)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.xml"), []byte(`<domstatus state='paused' reason='starting up'><job type='none' async='migration in'/><domain><name>in</name></domain></domstatus>`), 0o644)
	os.WriteFile(filepath.Join(dir, "run.xml"), []byte(`<domstatus state='running' reason='booted'><domain><name>run</name></domain></domstatus>`), 0o644)
	running, _, err := libvirt.ReadGuests(dir)
	if got := Arrivals(running, none, now); err != nil || len(got) != 1 || !got["in"] {
		t.Errorf("Arrivals = %v, %v; want only guest in", got, err)
	}
}

// TestStarted pins when a guest counts as started or resumed since it was
// last seen, from its live XML alone.
func TestStarted(t *testing.T) {
	seen := func(state, reason string, pid int) *Sighting {
		return &Sighting{State: state, Reason: reason, Pid: pid}
	}
	for _, tc := range []struct {
		name  string
		prev  *Sighting
		now   lab.Status
		start bool
	}{
		{"new, running", nil, lab.Status{State: "running", Reason: "booted", Pid: 7}, true},
		{"new, paused", nil, lab.Status{State: "paused", Reason: "user", Pid: 7}, false},
		{"running as before", seen("running", "booted", 7), lab.Status{State: "running", Reason: "booted", Pid: 7}, false},
		{"resumed", seen("paused", "user", 7), lab.Status{State: "running", Reason: "unpaused", Pid: 7}, true},
		{"paused and resumed in between", seen("running", "booted", 7), lab.Status{State: "running", Reason: "unpaused", Pid: 7}, true},
		{"migrated here", seen("paused", "migration", 7), lab.Status{State: "running", Reason: "migrated", Pid: 7}, true},
		{"restarted in between", seen("running", "booted", 7), lab.Status{State: "running", Reason: "booted", Pid: 8}, true},
		{"paused now", seen("running", "booted", 7), lab.Status{State: "paused", Reason: "user", Pid: 7}, false},
	} {
		g := parse(t, lab.Domain{Name: "g1"}.Live(tc.now))
		if got := Started(tc.prev, g); got != tc.start {
			t.Errorf("%s: started %v, want %v", tc.name, got, tc.start)
		}
		if s := Sight(g); s.State != tc.now.State || s.Reason != tc.now.Reason || s.Pid != tc.now.Pid {
			t.Errorf("%s: sighting %+v of %+v", tc.name, s, tc.now)
		}
	}
}
