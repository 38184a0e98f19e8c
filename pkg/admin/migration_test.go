package admin

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
)

func TestIncomingPaused(t *testing.T) {
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
		if got := IncomingGuests(running)["g"]; err != nil || got != tc.want {
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
	if got := IncomingGuests(running); err != nil || len(got) != 1 || !got["in"] {
		t.Errorf("IncomingGuests = %v, %v; want only guest in", got, err)
	}
}

// TestIncomingGuestWaits: g2 of world() (learning, no entry) is paused as
// a live migration's destination. reconcile leaves it alone, status shows
// its port as an incoming migration instead of two problems; once it runs
// here, both treat it as any guest.
func TestIncomingGuestWaits(t *testing.T) {
	k, running, defined := world(t)
	st := state(t, k, cfgBr0, running, defined)
	st.Incoming = map[string]bool{"g2": true}
	rep, err := Status(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		if p.Guest == "g2" {
			t.Errorf("status flags the incoming guest: %s", p.Text)
		}
	}
	var out bytes.Buffer
	rep.Format(&out)
	if !strings.Contains(out.String(), "(incoming migration)") || !strings.Contains(out.String(), "vnet2 (g2 net0): incoming live migration") {
		t.Errorf("status does not show the incoming migration:\n%s", out.String())
	}
	res, err := Reconcile(st, k, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Static(macG2); len(got) != 0 {
		t.Errorf("reconcile gave the incoming guest entries on %v", got)
	}
	if got := k.Device("vnet2").Flags; got != kerneltest.Learning {
		t.Errorf("reconcile changed the incoming guest's port: %s", got)
	}
	out.Reset()
	res.Format(&out)
	if !strings.Contains(out.String(), "guest g2: left alone: paused for an incoming live migration") {
		t.Errorf("reconcile does not say why g2 is left alone:\n%s", out.String())
	}
	if got := k.Static(macG1); !slices.Equal(got, []string{"vnet1"}) {
		t.Errorf("the other guests are not reconciled: g1's entries on %v", got)
	}
	// Resumed here: an ordinary running guest.
	st = state(t, k, cfgBr0, running, defined)
	if rep, _ := Status(st, nil); !slices.ContainsFunc(rep.Problems, func(p Problem) bool { return p.Guest == "g2" }) {
		t.Errorf("once running, g2's missing entry is not a problem: %+v", rep.Problems)
	}
	if _, err := Reconcile(st, k, false); err != nil {
		t.Fatal(err)
	}
	if got := k.Static(macG2); !slices.Equal(got, []string{"vnet2"}) {
		t.Errorf("once running, reconcile puts g2's entry on %v, want vnet2", got)
	}
}
