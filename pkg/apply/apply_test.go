package apply

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// newFake is br0 (index 2) with the uplink up0 (1) and the taps vnet10,
// vnet11 and vnet12 (10-12), all learning and flooding, no VLANs.
func newFake() *kerneltest.Kernel {
	k := kerneltest.New()
	k.Add(&model.Link{Name: "br0", Index: 2, Type: "bridge", VlanCapable: true})
	k.Add(&model.Link{Name: "up0", Index: 1, Type: "device", Master: "br0", Flags: kerneltest.Learning})
	for _, i := range []int{10, 11, 12} {
		k.Add(&model.Link{Name: fmt.Sprintf("vnet%d", i), Index: i, Type: "tuntap", TunMode: "tap", Master: "br0", Flags: kerneltest.Learning})
	}
	return k
}

// flagsOf returns the flags of port number i.
func flagsOf(k *kerneltest.Kernel, i int) model.Flags {
	for _, l := range k.Devices() {
		if l.Index == i {
			return l.Flags
		}
	}
	return model.Flags{}
}

// entryOf returns the entry for mac and vlan, with its port's name, or the
// zero Entry.
func entryOf(k *kerneltest.Kernel, mac string, vlan int) model.Entry {
	for _, e := range k.AllEntries() {
		if e.MAC == mac && e.Vlan == vlan {
			return e
		}
	}
	return model.Entry{}
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
	k.AddEntry(roamed)
	if err := Apply(k, threeNICs()); err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{10, 11, 12} {
		if f := flagsOf(k, port); f != (model.Flags{}) {
			t.Errorf("port %d flags %v, want off", port, f)
		}
	}
	if f := flagsOf(k, 1); f != kerneltest.Learning {
		t.Errorf("uplink flags changed: %v", f)
	}
	e := entryOf(k, roamed.MAC, 0)
	if e.PortIndex != 11 || e.State != model.NUDNoARP || e.NTFlags != model.NTFMaster {
		t.Errorf("entry for %s = %+v, want static master on port 11", roamed.MAC, e)
	}
}

func TestUndoFailureIsReported(t *testing.T) {
	k := newFake()
	steps := threeNICs()
	k.FailWith(func(c kerneltest.Call) error {
		// a write of the pipelined run, then the first undo call after it
		if c.N == 3 || c.N == len(steps)+1 {
			return kerneltest.Injected(c)
		}
		return nil
	})
	err := Apply(k, steps)
	var se *StepError
	if !errors.As(err, &se) || se.UndoErr == nil || !strings.Contains(err.Error(), "undoing the earlier steps failed") {
		t.Fatalf("Apply = %v, want a StepError reporting the undo failure", err)
	}
}

func TestVlanPolicyIsNotUndone(t *testing.T) {
	k := newFake()
	k.AddEntry(roamed)
	other := model.Entry{MAC: "52:54:00:00:00:20", Port: "up0", PortIndex: 1, State: model.NUDNoARP, NTFlags: model.NTFMaster}
	steps := append([]plan.Step{{Kind: plan.EnableVlanFiltering, Bridge: "br0", BridgeIndex: 2},
		{Kind: plan.ExtendEntry, MAC: other.MAC, Port: other.Port, PortIndex: other.PortIndex, Bridge: "br0", BridgeIndex: 2, Entry: other}},
		threeNICs()...)
	k.FailWith(kerneltest.FailAt(4))
	if err := Apply(k, steps); err == nil {
		t.Fatal("Apply succeeded despite the injected failure")
	}
	if br := k.Device("br0"); !br.VlanFiltering {
		t.Error("vlan_filtering was turned off again by the undo; it is bridge policy and must stay")
	}
	// The extended entry is written, and stays: with the filter on, the
	// other guest needs it.
	if calls := k.Calls(); calls[1].String() != "replace "+other.MAC || entryOf(k, other.MAC, 0) != other {
		t.Errorf("the entry of %s was not written again and kept: calls %v, kernel %s", other.Port, calls, k.State())
	}
	if flagsOf(k, 10) != kerneltest.Learning || len(k.AllEntries()) != 2 || entryOf(k, roamed.MAC, 0) != roamed {
		t.Errorf("guest state left behind: %s", k.State())
	}
}

func TestCleanupTreatsGoneAsDone(t *testing.T) {
	k := newFake()
	k.AddEntry(roamed)
	steps := []plan.Step{
		{Kind: plan.DelEntry, MAC: roamed.MAC, Bridge: "br0", Entry: roamed},
		{Kind: plan.DelEntry, MAC: "52:54:00:00:00:09", Bridge: "br0", Entry: model.Entry{MAC: "52:54:00:00:00:09", PortIndex: 10}},
		{Kind: plan.SetFlags, Port: "vnet99", PortIndex: 99, Bridge: "br0", Flags: kerneltest.Learning},
	}
	if err := Cleanup(k, steps); err != nil {
		t.Fatalf("Cleanup = %v, want nil (absent entry and port count as done)", err)
	}
	if e := k.AllEntries(); len(e) != 0 {
		t.Errorf("roamed entry not deleted: %v", e)
	}
	k.FailWith(kerneltest.FailAt(len(k.Calls()) + 1))
	k.AddEntry(roamed)
	if err := Cleanup(k, steps); !errors.Is(err, unix.EIO) {
		t.Errorf("Cleanup = %v, want the injected failure reported", err)
	}
}

// TestUndoLeavesLockedEntryOut: a start whose entry replaced another
// port's locked entry (a MAC that port's guest sent from undeclared, under
// undeclared_macs = "report") and then fails does not write the locked
// entry back: it would come back as a dynamic entry, which a locked port
// passes.
func TestUndoLeavesLockedEntryOut(t *testing.T) {
	k := newFake()
	const mac = "52:54:00:00:00:0e"
	locked := model.Entry{MAC: mac, Port: "vnet11", PortIndex: 11, State: 0x02, NTFlags: model.NTFMaster, FlagsExt: model.NTFExtLocked}
	k.AddEntry(locked)
	base := plan.Step{NIC: "net0", MAC: mac, Port: "vnet10", PortIndex: 10, Bridge: "br0", BridgeIndex: 2}
	add, set := base, base
	add.Kind, add.PriorEntries = plan.AddEntry, []model.Entry{locked}
	set.Kind, set.Prior = plan.SetFlags, kerneltest.Learning
	k.FailWith(func(c kerneltest.Call) error {
		if c.Method == "SetPortFlags" {
			return kerneltest.Injected(c)
		}
		return nil
	})
	if err := Apply(k, []plan.Step{add, set}); err == nil {
		t.Fatal("Apply succeeded, want the injected failure")
	}
	for _, e := range k.AllEntries() {
		if e.MAC == mac {
			t.Errorf("after the undo %s has %s, want no entry (the kernel locks it again at its next frame)", mac, e)
		}
	}
}
