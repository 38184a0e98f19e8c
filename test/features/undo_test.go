package features

import (
	"errors"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// TestUndoRestoresLockedPort: the plan for a locked, sticky port with an
// extra MAC, applied through the project's netlink code with a failure
// injected at each write, leaves the port exactly as it was each time:
// unlocked, learning and flooding on, no entries.
func TestUndoRestoresLockedPort(t *testing.T) {
	cfg, err := config.Parse([]byte("bridges = [\"br0\"]\n[bridge.br0]\nlock_ports = true\nsticky = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := guest.Parse([]byte(domainXML(extraMeta)))
	if err != nil {
		t.Fatal(err)
	}
	for failAt := 1; ; failAt++ {
		l := newLab(t)
		c, err := kernel.Open(l.host.NetNS, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		p, err := plan.Start(cfg, g, kerneltest.View{Reader: c})
		if err != nil || len(p.Refusals) > 0 {
			t.Fatalf("plan: %v\n%s", err, p.Format())
		}
		before := l.portFlags("tap0")
		err = apply.Apply(kerneltest.Wrap(c, kerneltest.FailWrite(failAt)), p.Steps)
		if err == nil {
			if failAt <= len(p.Steps) {
				t.Fatalf("apply with a failure at write %d of %d steps succeeded", failAt, len(p.Steps))
			}
			// Past the last write: the plan applied; check it did.
			if f := l.portFlags("tap0"); !f.Locked {
				t.Errorf("applied plan left tap0 %v, want locked", f)
			}
			return
		}
		var se *apply.StepError
		if !errors.As(err, &se) || !errors.Is(err, kerneltest.ErrInjected) || se.UndoErr != nil {
			t.Fatalf("write %d: apply = %v, want the injected failure and a clean undo", failAt, err)
		}
		if after := l.portFlags("tap0"); after != before {
			t.Errorf("write %d failed: tap0 %v after undo, want %v as before", failAt, after, before)
		}
		for _, mac := range []string{guestMAC, extraMAC} {
			if e := l.entryOf(mac); e.Port != "" {
				t.Errorf("write %d failed: entry for %s left: %+v", failAt, mac, e)
			}
		}
	}
}
