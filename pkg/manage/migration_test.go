package manage

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	"github.com/fdbhook/fdbhook/test/lab"
)

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
