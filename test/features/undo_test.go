package features

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// view is the kernel, with no libvirt networks and no other guests.
type view struct{ *kernel.Conn }

func (view) Network(string) (*model.Network, error) { return nil, nil }
func (view) PortOwner(string) (string, error)       { return "", nil }

// faultWriter fails write number failAt (from 1) of the apply; later writes
// (the undo) go through.
type faultWriter struct {
	*kernel.Conn
	n, failAt int
}

var errInjected = errors.New("injected failure")

func (w *faultWriter) fault() error {
	w.n++
	if w.n == w.failAt {
		return fmt.Errorf("write %d: %w", w.n, errInjected)
	}
	return nil
}

func (w *faultWriter) SetPortFlags(i int, f model.Flags, withLocked bool) error {
	if err := w.fault(); err != nil {
		return err
	}
	return w.Conn.SetPortFlags(i, f, withLocked)
}

func (w *faultWriter) ReplaceEntry(e model.Entry) error {
	if err := w.fault(); err != nil {
		return err
	}
	return w.Conn.ReplaceEntry(e)
}

func (w *faultWriter) DeleteEntry(e model.Entry) error {
	if err := w.fault(); err != nil {
		return err
	}
	return w.Conn.DeleteEntry(e)
}

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
		p, err := plan.Start(cfg, g, view{c})
		if err != nil || len(p.Refusals) > 0 {
			t.Fatalf("plan: %v\n%s", err, p.Format())
		}
		before := l.portFlags("tap0")
		err = apply.Apply(&faultWriter{Conn: c, failAt: failAt}, p.Steps)
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
		if !errors.As(err, &se) || !errors.Is(err, errInjected) || se.UndoErr != nil {
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
