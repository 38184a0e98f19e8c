package apply

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// featureSteps is a locked port with VLANs, a sticky entry and an extra MAC.
func featureSteps() []plan.Step {
	base := plan.Step{NIC: "net0", MAC: "52:54:00:00:00:01", Port: "vnet10", PortIndex: 10, Bridge: "br0", BridgeIndex: 2}
	vl, add, extra, set := base, base, base, base
	vl.Kind, vl.Vlans = plan.SetVlans, []model.Vlan{{ID: 10, Pvid: true, Untagged: true}, {ID: 20}}
	add.Kind, add.Sticky = plan.AddEntry, true
	extra.Kind, extra.MAC, extra.Sticky, extra.Why = plan.AddEntry, "00:00:5e:00:01:0a", true, "extra MAC"
	set.Kind, set.Flags, set.Prior, set.WithLocked = plan.SetFlags, model.Flags{Locked: true}, model.Flags{Learning: true, Flood: true}, true
	return []plan.Step{vl, add, extra, set}
}

// newVlanFake is newFake with VLAN 1 on vnet10, as a new port has it.
func newVlanFake() *kerneltest.Kernel {
	k := newFake()
	k.SetVlans("vnet10", model.Vlan{ID: 1, Pvid: true, Untagged: true})
	return k
}

func TestApplyFeatures(t *testing.T) {
	k := newVlanFake()
	if err := Apply(k, featureSteps()); err != nil {
		t.Fatal(err)
	}
	for _, mac := range []string{"52:54:00:00:00:01", "00:00:5e:00:01:0a"} {
		if e := entryOf(k, mac, 0); e.PortIndex != 10 || e.NTFlags != model.NTFMaster|model.NTFSticky || e.State != model.NUDNoARP {
			t.Errorf("entry for %s = %+v, want static sticky master on port 10", mac, e)
		}
	}
	if f := flagsOf(k, 10); f != (model.Flags{Locked: true}) {
		t.Errorf("port flags %v, want learning off flood off locked on", f)
	}
	if want, got := featureSteps()[0].Vlans, must(k.PortVlans(10)); !slices.Equal(got, want) {
		t.Errorf("port VLANs %v, want %v", got, want)
	}
}

// TestApplyFeaturesFailAtEveryCall: whichever call fails, the port's
// VLANs, entries and flags end as they began.
func TestApplyFeaturesFailAtEveryCall(t *testing.T) {
	for n := 1; n <= 5; n++ { // getvlans, setvlans, replace, replace, flags
		t.Run(fmt.Sprintf("call%d", n), func(t *testing.T) {
			k := newVlanFake()
			before := k.State()
			k.FailWith(kerneltest.FailAt(n))
			err := Apply(k, featureSteps())
			var se *StepError
			if !errors.As(err, &se) || se.UndoErr != nil {
				t.Fatalf("Apply = %v, want a StepError with a clean undo", err)
			}
			if after := k.State(); after != before {
				t.Errorf("kernel changed by a failed apply:\nbefore %s\nafter  %s\ncalls %v", before, after, k.Calls())
			}
		})
	}
}

// TestAddEntryOverExternLearned: an extern_learn entry is deleted before
// the static entry is written (a replace would keep its flag), and put
// back when the write fails.
func TestAddEntryOverExternLearned(t *testing.T) {
	ext := model.Entry{MAC: "52:54:00:00:00:01", Port: "up0", PortIndex: 1, State: 0x02, NTFlags: model.NTFMaster | model.NTFExtLearn}
	step := plan.Step{Kind: plan.AddEntry, NIC: "net0", MAC: ext.MAC, Port: "vnet10", PortIndex: 10, Bridge: "br0",
		PriorEntries: []model.Entry{ext}}
	k := newFake()
	k.AddEntry(ext)
	if err := Apply(k, []plan.Step{step}); err != nil {
		t.Fatal(err)
	}
	if e, log := entryOf(k, ext.MAC, 0), k.WriteLog(); e.PortIndex != 10 || e.NTFlags != model.NTFMaster || !slices.Equal(log, []string{"delete " + ext.MAC, "replace " + ext.MAC}) {
		t.Errorf("entry %+v after %v, want a plain static entry on port 10 written after deleting the extern_learn one", e, log)
	}
	k = newFake()
	k.AddEntry(ext)
	k.FailWith(kerneltest.FailAt(2))
	if err := Apply(k, []plan.Step{step}); err == nil {
		t.Fatal("Apply succeeded despite the injected failure")
	}
	if e := entryOf(k, ext.MAC, 0); e != ext {
		t.Errorf("after a failed write the extern_learn entry is %+v, want %+v back", e, ext)
	}
}

// must returns v, for reads of the fake, which fail only when told to.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestApplyTwoVlanPortsFailAtEveryCall: two NICs with VLANs. The second
// port's VLAN step is carried out on its own, after the first port's
// writes, so whichever call fails (until none does), the undo takes back
// what both ports had done, one by one and pipelined, and the kernel ends
// as it began.
func TestApplyTwoVlanPortsFailAtEveryCall(t *testing.T) {
	steps := featureSteps()
	for _, s := range featureSteps() {
		s.NIC, s.Port, s.PortIndex = "net1", "vnet11", 11
		s.MAC = map[string]string{"52:54:00:00:00:01": "52:54:00:00:00:02", "00:00:5e:00:01:0a": "00:00:5e:00:01:0b"}[s.MAC]
		steps = append(steps, s)
	}
	newKernel := func() *kerneltest.Kernel {
		k := newVlanFake()
		k.SetVlans("vnet11", model.Vlan{ID: 1, Pvid: true, Untagged: true})
		return k
	}
	n := 1
	for ; n < 40; n++ {
		k := newKernel()
		before := k.State()
		k.FailWith(kerneltest.FailAt(n))
		err := Apply(k, steps)
		if err == nil {
			break // the n-1 calls of a whole apply all succeeded
		}
		var se *StepError
		if !errors.As(err, &se) || se.UndoErr != nil {
			t.Fatalf("call %d: Apply = %v, want a StepError with a clean undo", n, err)
		}
		if after := k.State(); after != before {
			t.Errorf("call %d: kernel changed by a failed apply:\nbefore %s\nafter  %s\ncalls %v", n, before, after, k.Calls())
		}
	}
	if n < 10 { // at least each port's VLAN read and write, two entries and flags
		t.Errorf("an apply made %d calls, want at least 9", n-1)
	}
}
