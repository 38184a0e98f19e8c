package apply

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

type fdbKey struct {
	mac  string
	vlan int
}

// fakeKernel models what the apply step relies on: per-port flags, and one
// FDB entry per (MAC, VLAN) that a replace moves between ports.
type fakeKernel struct {
	flags   map[int]model.Flags
	fdb     map[fdbKey]model.Entry
	vlanOn  map[int]bool
	calls   int
	failAt  int // the call that fails (1-based); 0: none
	onCall  func(n int)
	history []string
}

func newFake() *fakeKernel {
	on := model.Flags{Learning: true, Flood: true}
	return &fakeKernel{
		flags:  map[int]model.Flags{1: on, 10: on, 11: on, 12: on},
		fdb:    map[fdbKey]model.Entry{},
		vlanOn: map[int]bool{},
	}
}

func (k *fakeKernel) call(what string) error {
	k.calls++
	k.history = append(k.history, what)
	if k.onCall != nil {
		k.onCall(k.calls)
	}
	if k.calls == k.failAt {
		return fmt.Errorf("injected failure at call %d (%s): %w", k.calls, what, unix.EIO)
	}
	return nil
}

func (k *fakeKernel) SetVlanFiltering(br int, on bool) error {
	if err := k.call("vlan"); err != nil {
		return err
	}
	k.vlanOn[br] = on
	return nil
}

func (k *fakeKernel) SetPortFlags(port int, f model.Flags, _ bool) error {
	if err := k.call("flags"); err != nil {
		return err
	}
	if _, ok := k.flags[port]; !ok {
		return unix.ENODEV
	}
	k.flags[port] = f
	return nil
}

func (k *fakeKernel) ReplaceEntry(e model.Entry) error {
	if err := k.call("replace"); err != nil {
		return err
	}
	if _, ok := k.flags[e.PortIndex]; !ok {
		return unix.ENODEV
	}
	k.fdb[fdbKey{e.MAC, e.Vlan}] = e
	return nil
}

func (k *fakeKernel) DeleteEntry(e model.Entry) error {
	if err := k.call("delete"); err != nil {
		return err
	}
	cur, ok := k.fdb[fdbKey{e.MAC, e.Vlan}]
	if !ok || cur.PortIndex != e.PortIndex {
		return unix.ENOENT
	}
	delete(k.fdb, fdbKey{e.MAC, e.Vlan})
	return nil
}

func (k *fakeKernel) snapshot() string {
	return fmt.Sprint(k.flags, k.fdb, k.vlanOn)
}

var roamed = model.Entry{MAC: "52:54:00:00:00:02", Port: "up0", PortIndex: 1, State: model.NUDNoARP, NTFlags: model.NTFMaster}

// threeNICs is the plan of a guest with three managed NICs, one of whose
// MACs had roamed to the uplink.
func threeNICs() []plan.Step {
	var steps []plan.Step
	for i, port := range []int{10, 11, 12} {
		mac := fmt.Sprintf("52:54:00:00:00:%02x", i+1)
		base := plan.Step{NIC: fmt.Sprintf("net%d", i), MAC: mac, Port: fmt.Sprintf("vnet%d", port),
			PortIndex: port, Bridge: "br0", BridgeIndex: 2}
		add := base
		add.Kind = plan.AddEntry
		if mac == roamed.MAC {
			add.PriorEntries = []model.Entry{roamed}
		}
		set := base
		set.Kind, set.Prior = plan.SetFlags, model.Flags{Learning: true, Flood: true}
		steps = append(steps, add, set)
	}
	return steps
}

func TestApplySucceeds(t *testing.T) {
	k := newFake()
	k.fdb[fdbKey{roamed.MAC, 0}] = roamed
	if err := Apply(k, threeNICs()); err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{10, 11, 12} {
		if k.flags[port] != (model.Flags{}) {
			t.Errorf("port %d flags %v, want off", port, k.flags[port])
		}
	}
	if k.flags[1] != (model.Flags{Learning: true, Flood: true}) {
		t.Errorf("uplink flags changed: %v", k.flags[1])
	}
	e := k.fdb[fdbKey{roamed.MAC, 0}]
	if e.PortIndex != 11 || e.State != model.NUDNoARP || e.NTFlags != model.NTFMaster {
		t.Errorf("entry for %s = %+v, want static master on port 11", roamed.MAC, e)
	}
}

// TestApplyFailsAtEveryCall injects a failure at every call a three-NIC
// apply makes, and checks that each time the kernel ends exactly as it
// began and the error names the failed step.
func TestApplyFailsAtEveryCall(t *testing.T) {
	steps := threeNICs()
	for n := 1; n <= len(steps); n++ {
		t.Run(fmt.Sprintf("call%d", n), func(t *testing.T) {
			k := newFake()
			k.fdb[fdbKey{roamed.MAC, 0}] = roamed
			before := k.snapshot()
			k.failAt = n
			err := Apply(k, steps)
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("Apply = %v, want *StepError", err)
			}
			if se.Step.MAC != steps[n-1].MAC || !errors.Is(err, unix.EIO) {
				t.Errorf("error %q does not name step %d (%s)", err, n, steps[n-1])
			}
			if !strings.HasPrefix(err.Error(), steps[n-1].MAC+" on br0: ") {
				t.Errorf("error %q does not start with \"<mac> on <bridge>: \"", err)
			}
			if se.UndoErr != nil {
				t.Errorf("undo failed: %v", se.UndoErr)
			}
			if after := k.snapshot(); after != before {
				t.Errorf("kernel changed by a failed apply:\nbefore %s\nafter  %s\ncalls %v", before, after, k.history)
			}
		})
	}
}

// TestApplyPortVanishes deletes the last port while the apply runs: the
// apply fails on it and leaves the other ports as they were.
func TestApplyPortVanishes(t *testing.T) {
	k := newFake()
	k.fdb[fdbKey{roamed.MAC, 0}] = roamed
	before := maps.Clone(k.flags)
	delete(before, 12)
	k.onCall = func(n int) {
		if n == 4 {
			delete(k.flags, 12)
		}
	}
	err := Apply(k, threeNICs())
	if !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), "vnet12") {
		t.Fatalf("Apply = %v, want ENODEV naming vnet12", err)
	}
	if !maps.Equal(k.flags, before) || len(k.fdb) != 1 || k.fdb[fdbKey{roamed.MAC, 0}] != roamed {
		t.Errorf("left behind: flags %v fdb %v", k.flags, k.fdb)
	}
}

func TestUndoFailureIsReported(t *testing.T) {
	k := newFake()
	k.failAt = 3
	k.onCall = func(n int) {
		if n == 4 { // the first undo call
			k.failAt = 4
		}
	}
	err := Apply(k, threeNICs())
	var se *StepError
	if !errors.As(err, &se) || se.UndoErr == nil || !strings.Contains(err.Error(), "undoing the earlier steps failed") {
		t.Fatalf("Apply = %v, want a StepError reporting the undo failure", err)
	}
}

func TestVlanPolicyIsNotUndone(t *testing.T) {
	k := newFake()
	other := model.Entry{MAC: "52:54:00:00:00:20", Port: "vnet1", PortIndex: 1, State: model.NUDNoARP, NTFlags: model.NTFMaster}
	steps := append([]plan.Step{{Kind: plan.EnableVlanFiltering, Bridge: "br0", BridgeIndex: 2},
		{Kind: plan.ExtendEntry, MAC: other.MAC, Port: other.Port, PortIndex: other.PortIndex, Bridge: "br0", BridgeIndex: 2, Entry: other}},
		threeNICs()...)
	k.failAt = 4
	if err := Apply(k, steps); err == nil {
		t.Fatal("Apply succeeded despite the injected failure")
	}
	if !k.vlanOn[2] {
		t.Error("vlan_filtering was turned off again by the undo; it is bridge policy and must stay")
	}
	// The extended entry is written, and stays: with the filter on, the
	// other guest needs it.
	if k.history[1] != "replace" || k.fdb[fdbKey{other.MAC, 0}] != other {
		t.Errorf("the entry of %s was not written again and kept: calls %v, fdb %s", other.Port, k.history, k.snapshot())
	}
	if k.flags[10] != (model.Flags{Learning: true, Flood: true}) || len(k.fdb) != 1 {
		t.Errorf("guest state left behind: %s", k.snapshot())
	}
}

func TestCleanupTreatsGoneAsDone(t *testing.T) {
	k := newFake()
	k.fdb[fdbKey{roamed.MAC, 0}] = roamed
	steps := []plan.Step{
		{Kind: plan.DelEntry, MAC: roamed.MAC, Bridge: "br0", Entry: roamed},
		{Kind: plan.DelEntry, MAC: "52:54:00:00:00:09", Bridge: "br0", Entry: model.Entry{MAC: "52:54:00:00:00:09", PortIndex: 10}},
		{Kind: plan.SetFlags, Port: "vnet99", PortIndex: 99, Bridge: "br0", Flags: model.Flags{Learning: true, Flood: true}},
	}
	if err := Cleanup(k, steps); err != nil {
		t.Fatalf("Cleanup = %v, want nil (absent entry and port count as done)", err)
	}
	if len(k.fdb) != 0 {
		t.Errorf("roamed entry not deleted: %v", k.fdb)
	}
	k.failAt = k.calls + 1
	k.fdb[fdbKey{roamed.MAC, 0}] = roamed
	if err := Cleanup(k, steps); !errors.Is(err, unix.EIO) {
		t.Errorf("Cleanup = %v, want the injected failure reported", err)
	}
}
