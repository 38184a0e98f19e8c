package integration

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// view is what the planner reads: the kernel of a lab and (empty) libvirt
// state files.
type view struct {
	*kernel.Conn
	*libvirt.Files
}

// errInjected is the failure faultWriter makes up.
var errInjected = errors.New("injected fault")

// faultWriter passes every call to a real kernel connection, except that
// write number failAt (from 1) fails, and with failRest every later write
// too. before, when set, runs ahead of every write with its number. Reads
// pass straight through.
type faultWriter struct {
	w model.ReadWriter
	model.Reader
	calls    int
	failAt   int
	failRest bool
	before   func(call int)
	log      []string
}

func (f *faultWriter) step(what string) error {
	f.calls++
	if f.before != nil {
		f.before(f.calls)
	}
	f.log = append(f.log, fmt.Sprintf("%d %s", f.calls, what))
	if f.calls == f.failAt || f.failRest && f.failAt > 0 && f.calls > f.failAt {
		return errInjected
	}
	return nil
}

func (f *faultWriter) SetVlanFiltering(i int, on bool) error {
	if err := f.step(fmt.Sprintf("vlan_filtering %d %v", i, on)); err != nil {
		return err
	}
	return f.w.SetVlanFiltering(i, on)
}

func (f *faultWriter) SetPortFlags(i int, fl model.Flags, withLocked, withMab bool) error {
	if err := f.step(fmt.Sprintf("flags %d %s", i, fl)); err != nil {
		return err
	}
	return f.w.SetPortFlags(i, fl, withLocked, withMab)
}

func (f *faultWriter) ReplaceEntry(e model.Entry) error {
	if err := f.step(fmt.Sprintf("replace %s", e)); err != nil {
		return err
	}
	return f.w.ReplaceEntry(e)
}

func (f *faultWriter) DeleteEntry(e model.Entry) error {
	if err := f.step(fmt.Sprintf("delete %s", e)); err != nil {
		return err
	}
	return f.w.DeleteEntry(e)
}

// Pipeline lets the connection pipeline the writes made inside write; a
// write faultWriter fails returns its error at once, never sent.
func (f *faultWriter) Pipeline(write func()) []error { return f.w.Pipeline(write) }

func (f *faultWriter) AddPortVlans(i int, v []model.Vlan) error {
	if err := f.step(fmt.Sprintf("add vlans %d %v", i, v)); err != nil {
		return err
	}
	return f.w.AddPortVlans(i, v)
}

func (f *faultWriter) DelPortVlans(i int, v []model.Vlan) error {
	if err := f.step(fmt.Sprintf("del vlans %d %v", i, v)); err != nil {
		return err
	}
	return f.w.DelPortVlans(i, v)
}

// faultGuest is a three-NIC guest on br0 (taps fa1..fa3). Before it
// starts, the taps and the uplink hold a mix of state that the undo must
// put back exactly: fa2 already has learning off, fa3 flood off; the MACs
// of NICs 2 and 3 have a static and a static sticky entry on a VXLAN port
// (on the veth uplink they would be taken for another guest's: veths are
// container ports), and fa1 carries an unrelated static entry.
var faultGuest = []nic{
	{MAC: mac(5, 1), Bridge: "br0", Target: "fa1"},
	{MAC: mac(5, 2), Bridge: "br0", Target: "fa2"},
	{MAC: mac(5, 3), Bridge: "br0", Target: "fa3"},
}

func faultLab(t *testing.T) *lab {
	t.Helper()
	l := newStdLab(t)
	for _, n := range faultGuest {
		l.AddTap(n.Target, "br0")
	}
	l.SetFlags("fa2", false, true)
	l.SetFlags("fa3", true, false)
	if err := l.Handle.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "fdbtvx0"}, VxlanId: 5, Port: 4789}); err != nil {
		t.Fatalf("adding vxlan port: %v", err)
	}
	l.Enslave("fdbtvx0", "br0")
	l.fdbAdd(mac(5, 2), "fdbtvx0", "static")
	l.fdbAdd(mac(5, 3), "fdbtvx0", "static", "sticky")
	l.fdbAdd(mac(9, 5), "fa1", "static")
	return l
}

// planStart plans the start of the fault guest with the project's planner
// over a real connection.
func planStart(t *testing.T, l *lab, c *kernel.Conn) []plan.Step {
	t.Helper()
	cfg, err := config.Parse([]byte(defaultConfig))
	if err != nil {
		t.Fatal(err)
	}
	g, err := guest.Parse(domain("fdbt-f", "", faultGuest...))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := plan.Start(cfg, g, view{c, libvirt.New(libvirt.Paths{NetworkDirs: []string{dir}, QemuRunDir: dir})})
	if err != nil {
		t.Fatalf("plan.Start: %v", err)
	}
	if len(p.Refusals) > 0 || len(p.Steps) != 6 {
		t.Fatalf("want 6 steps (entry and flags for 3 taps) and no refusals, got:\n%s", p.Format())
	}
	return p.Steps
}

// TestApplyFaultAtEveryStep: for every n, the n-th kernel write of a
// 3-NIC start fails; Apply must name that step and leave every port's
// flags and every bridge entry exactly as before. With every later write
// failing too (the undo fails), the error must say so.
func TestApplyFaultAtEveryStep(t *testing.T) {
	t.Parallel()
	l := faultLab(t)
	before := l.snap()
	n := len(planStart(t, l, l.conn()))
	for failAt := 1; failAt <= n+1; failAt++ {
		t.Run(fmt.Sprintf("write %d fails", failAt), func(t *testing.T) {
			c := l.conn()
			steps := planStart(t, l, c)
			fw := &faultWriter{w: c, Reader: c, failAt: failAt}
			err := apply.Apply(fw, steps)
			if failAt > n {
				if err != nil {
					t.Fatalf("no fault injected, Apply failed: %v", err)
				}
				want := before
				for _, g := range faultGuest {
					want = want.managed(g.Target, g.MAC)
				}
				l.expect(t, "apply without fault", want)
				return
			}
			var se *apply.StepError
			if !errors.As(err, &se) {
				t.Fatalf("Apply = %v, want a *apply.StepError", err)
			}
			failed := steps[failAt-1]
			if se.Step.Kind != failed.Kind || se.Step.Port != failed.Port || se.Step.MAC != failed.MAC {
				t.Errorf("StepError names step %s, want %s", se.Step, failed)
			}
			if !errors.Is(err, errInjected) {
				t.Errorf("error does not wrap the injected fault: %v", err)
			}
			for _, part := range []string{failed.MAC + " on br0", failed.Port} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not name %q", err, part)
				}
			}
			if se.UndoErr != nil {
				t.Errorf("undo failed: %v", se.UndoErr)
			}
			l.expectUnchanged(t, fmt.Sprintf("apply failed at write %d (writes: %s)", failAt, strings.Join(fw.log, "; ")), before)
		})
	}
	t.Run("undo fails too", func(t *testing.T) {
		l := faultLab(t)
		c := l.conn()
		steps := planStart(t, l, c)
		err := apply.Apply(&faultWriter{w: c, Reader: c, failAt: 3, failRest: true}, steps)
		var se *apply.StepError
		if !errors.As(err, &se) || se.UndoErr == nil {
			t.Fatalf("Apply = %v, want a StepError with UndoErr", err)
		}
		if !strings.Contains(err.Error(), "undoing the earlier steps failed") {
			t.Errorf("error does not say the undo failed: %v", err)
		}
	})
}

// TestApplyPortDisappears: a tap is deleted (QEMU died, an admin removed
// it) between two writes of a start. Whatever the moment, the result is
// all or nothing for the ports that still exist: either Apply fails and
// every surviving port and entry is as before, or it succeeds and every
// surviving port is managed.
func TestApplyPortDisappears(t *testing.T) {
	t.Parallel()
	for k := 1; k <= 6; k++ {
		for _, victimOf := range []string{"the next step's port", "the first port"} {
			t.Run(fmt.Sprintf("before write %d, %s", k, victimOf), func(t *testing.T) {
				t.Parallel()
				l := faultLab(t)
				before := l.snap()
				c := l.conn()
				steps := planStart(t, l, c)
				victim := steps[0].Port
				if victimOf == "the next step's port" {
					victim = steps[k-1].Port
				}
				h := l.Handle
				var delErr error
				fw := &faultWriter{w: c, Reader: c, before: func(call int) {
					if call == k {
						link, err := h.LinkByName(victim)
						if err == nil {
							err = h.LinkDel(link)
						}
						delErr = err
					}
				}}
				err := apply.Apply(fw, steps)
				if delErr != nil {
					t.Fatalf("deleting %s: %v", victim, delErr)
				}
				rest := before.without(victim)
				if err != nil {
					var se *apply.StepError
					if !errors.As(err, &se) {
						t.Fatalf("Apply = %v, want a *apply.StepError", err)
					}
					if se.UndoErr != nil {
						t.Errorf("undo failed: %v", se.UndoErr)
					}
					l.expect(t, fmt.Sprintf("failed apply, %s deleted (%v)", victim, err), rest)
					return
				}
				want := rest
				for _, g := range faultGuest {
					if g.Target != victim {
						want = want.managed(g.Target, g.MAC)
					}
				}
				// The victim's MAC: its entry went with its port.
				for _, g := range faultGuest {
					if g.Target == victim {
						want = want.withoutEntries(g.MAC)
					}
				}
				l.expect(t, fmt.Sprintf("apply succeeded, %s deleted", victim), want)
			})
		}
	}
}

// TestApplyPortDisappearsUnderBinary: the same through the real binary: a
// tap deleted before the hook runs makes start fail cleanly. (The binary's
// own between-writes window is too short to hit from outside reliably;
// the in-process test above covers every gap.)
func TestApplyPortDisappearsUnderBinary(t *testing.T) {
	t.Parallel()
	l := faultLab(t)
	l.Del("fa2")
	before := l.snap()
	r := l.hook(t, call{Args: []string{"fdbt-f", "start", "begin", "-"}, Stdin: domain("fdbt-f", "", faultGuest...)})
	expectExit(t, r, 1)
	failureLine(t, r, "fdbhook: fdbt-f: "+mac(5, 2)+" on br0: ", "fa2")
	l.expectUnchanged(t, "start with a deleted tap", before)
}

// TestStartOverExternLearnedEntry: the guest's MAC has a dynamic entry
// learned by an external controller (extern_learn, as an EVPN daemon
// writes them) on a VXLAN port. The start must leave a plain static entry
// on the tap: one still flagged extern_learn belongs to the controller,
// which deletes it when it withdraws the route. A failed start must put
// the controller's entry back as it was.
func TestStartOverExternLearnedEntry(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) *lab {
		l := newStdLab(t)
		l.AddTap("fe1", "br0")
		if err := l.Handle.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "fdbtvx0"}, VxlanId: 5, Port: 4789}); err != nil {
			t.Fatalf("adding vxlan port: %v", err)
		}
		l.Enslave("fdbtvx0", "br0")
		l.fdbAdd(mac(6, 1), "fdbtvx0", "dynamic", "extern_learn")
		return l
	}
	xml := domain("fdbt-e", "", nic{MAC: mac(6, 1), Bridge: "br0", Target: "fe1"})
	t.Run("start", func(t *testing.T) {
		l := setup(t)
		before := l.snap()
		l.start(t, "fdbt-e", xml)
		l.expect(t, "start over an extern_learn entry", before.managed("fe1", mac(6, 1)))
	})
	t.Run("undo", func(t *testing.T) {
		l := setup(t)
		before := l.snap()
		c := l.conn()
		cfg, _ := config.Parse([]byte(defaultConfig))
		g, err := guest.Parse(xml)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		p, err := plan.Start(cfg, g, view{c, libvirt.New(libvirt.Paths{NetworkDirs: []string{dir}, QemuRunDir: dir})})
		if err != nil || len(p.Steps) != 2 {
			t.Fatalf("plan: %v\n%s", err, p.Format())
		}
		if err := apply.Apply(&faultWriter{w: c, Reader: c, failAt: 2}, p.Steps); err == nil {
			t.Fatal("Apply with a fault at write 2 succeeded")
		}
		l.expectUnchanged(t, "undone start over an extern_learn entry", before)
	})
}
