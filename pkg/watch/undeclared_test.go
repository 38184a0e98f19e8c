package watch

import (
	"strings"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// TestUndeclaredMACLoggedOnce: with undeclared_macs = "report" the watcher
// gives g1's port MAB; a locked entry (a frame from a MAC g1 did not
// declare) is logged once, with guest, NIC, port and MAC, however often
// the port is looked at again; once the entry is gone and comes back, it
// is logged again.
func TestUndeclaredMACLoggedOnce(t *testing.T) {
	r := mabRig(t, "undeclared_macs = \"report\"\n")

	const nested = "02:00:00:00:0e:01"
	lines := func() int {
		return strings.Count(r.log.String(), "guest g1 NIC net0 on vnet1 sends from undeclared MAC "+nested+": the port drops its frames from that MAC")
	}
	idx := r.k.Index("vnet1")
	r.k.Learn("vnet1", nested)
	r.emit(Event{PortIndex: idx, Why: "test: locked entry"})
	r.waitFor("one line about "+nested, func() bool { return lines() == 1 })
	r.k.Learn("vnet1", nested)
	r.emit(Event{PortIndex: idx, Why: "test: locked entry refreshed"})
	r.emit(Event{Resync: true, Why: "test: timer"})
	r.waitFor("still one line about "+nested, func() bool { return lines() == 1 })
	if f, _ := r.k.Flags("vnet1"); f != model.Reporting {
		t.Errorf("vnet1 has %s after the locked entry, want %s", f, model.Reporting)
	}

	r.k.DelStatic(nested, "vnet1") // aged out
	r.emit(Event{PortIndex: idx, Why: "test: locked entry gone"})
	r.settle()
	r.k.Learn("vnet1", nested)
	r.emit(Event{PortIndex: idx, Why: "test: locked entry again"})
	r.waitFor("a second line about "+nested+" once it came back", func() bool { return lines() == 2 })
}

// TestNoMABWarnedOnce: report mode on a kernel without MAB manages the
// port as "ignore" does, and the plan's warning is logged once, not at
// every resync; after a reconcile without it, it is logged again.
func TestNoMABWarnedOnce(t *testing.T) {
	report := twoBridges + "[bridge.br0]\nundeclared_macs = \"report\"\n"
	r := newRig(t, report)
	r.k.Add(kerneltest.Tap("vnet1", "br0", kerneltest.Learning)).LockCapable = true
	r.guest("g1", "running", "br0:vnet1:"+mac1)
	r.start()
	r.waitFor("g1 managed as with ignore", r.managed("vnet1", mac1))
	const warning = "guest g1 net0 " + mac1 + " on br0, port vnet1: this kernel has no MAC Authentication Bypass"
	count := func() int { return strings.Count(r.log.String(), warning) }
	for range 3 {
		r.emit(Event{Resync: true, Why: "test: timer"})
		r.settle()
	}
	if n := count(); n != 1 {
		t.Errorf("the warning was logged %d times over 4 reconciles, want once; log:\n%s", n, r.log.String())
	}
	r.config(twoBridges)
	r.emit(Event{Reload: true, Why: "test: configuration changed"})
	r.settle()
	r.config(report)
	r.emit(Event{Reload: true, Why: "test: configuration changed"})
	r.waitFor("the warning logged again once report mode is back", func() bool { return count() == 2 })
}
