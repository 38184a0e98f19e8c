package admin

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/manage"
)

// TestIncomingGuestWaits: g2 of world() (learning, no entry) is paused as
// a live migration's destination. reconcile leaves it alone, status shows
// its port as an incoming migration instead of two problems; once it runs
// here, both treat it as any guest.
func TestIncomingGuestWaits(t *testing.T) {
	k, running, defined := world(t)
	st := state(t, k, cfgBr0, running, defined)
	st.Incoming = map[string]bool{"g2": true}
	rep, err := Status(st, nil, nil)
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
	res, err := manage.Reconcile(st, k, false)
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
	FormatResult(&out, res)
	if !strings.Contains(out.String(), "guest g2: left alone: paused for an incoming live migration") {
		t.Errorf("reconcile does not say why g2 is left alone:\n%s", out.String())
	}
	if got := k.Static(macG1); !slices.Equal(got, []string{"vnet1"}) {
		t.Errorf("the other guests are not reconciled: g1's entries on %v", got)
	}
	// Resumed here: an ordinary running guest.
	st = state(t, k, cfgBr0, running, defined)
	if rep, _ := Status(st, nil, nil); !slices.ContainsFunc(rep.Problems, func(p Problem) bool { return p.Guest == "g2" }) {
		t.Errorf("once running, g2's missing entry is not a problem: %+v", rep.Problems)
	}
	if _, err := manage.Reconcile(st, k, false); err != nil {
		t.Fatal(err)
	}
	if got := k.Static(macG2); !slices.Equal(got, []string{"vnet2"}) {
		t.Errorf("once running, reconcile puts g2's entry on %v, want vnet2", got)
	}
}
