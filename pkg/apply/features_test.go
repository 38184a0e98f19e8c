package apply

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// vlanKernel is fakeKernel with port VLANs.
type vlanKernel struct {
	*fakeKernel
	vlans map[int][]model.Vlan
}

func (k *vlanKernel) PortVlans(port int) ([]model.Vlan, error) {
	if err := k.call("getvlans"); err != nil {
		return nil, err
	}
	return slices.Clone(k.vlans[port]), nil
}

func (k *vlanKernel) AddPortVlans(port int, v []model.Vlan) error {
	if err := k.call("addvlans"); err != nil {
		return err
	}
	for _, x := range v {
		k.vlans[port] = append(slices.DeleteFunc(k.vlans[port], func(y model.Vlan) bool { return y.ID == x.ID }), x)
	}
	slices.SortFunc(k.vlans[port], func(a, b model.Vlan) int { return a.ID - b.ID })
	return nil
}

func (k *vlanKernel) DelPortVlans(port int, v []model.Vlan) error {
	if err := k.call("delvlans"); err != nil {
		return err
	}
	k.vlans[port] = slices.DeleteFunc(k.vlans[port], func(y model.Vlan) bool {
		return slices.ContainsFunc(v, func(x model.Vlan) bool { return x.ID == y.ID })
	})
	return nil
}

func (k *vlanKernel) snapshot() string { return k.fakeKernel.snapshot() + fmt.Sprint(k.vlans) }

// featureSteps is a locked port with VLANs, a sticky entry and an extra MAC.
func featureSteps() []plan.Step {
	base := plan.Step{NIC: "net0", MAC: "52:54:00:00:00:01", Port: "vnet10", PortIndex: 10, Bridge: "br0", BridgeIndex: 2}
	vl, add, extra, set := base, base, base, base
	vl.Kind, vl.Vlans = plan.SetVlans, []model.Vlan{{ID: 10, Pvid: true, Untagged: true}, {ID: 20}}
	add.Kind, add.Sticky = plan.AddEntry, true
	extra.Kind, extra.MAC, extra.Sticky, extra.Why = plan.AddEntry, "00:00:5e:00:01:0a", true, "extra MAC"
	set.Kind, set.Flags, set.Prior = plan.SetFlags, model.Flags{Locked: true}, model.Flags{Learning: true, Flood: true}
	return []plan.Step{vl, add, extra, set}
}

func newVlanFake() *vlanKernel {
	return &vlanKernel{fakeKernel: newFake(), vlans: map[int][]model.Vlan{10: {{ID: 1, Pvid: true, Untagged: true}}}}
}

func TestApplyFeatures(t *testing.T) {
	k := newVlanFake()
	if err := Apply(k, featureSteps()); err != nil {
		t.Fatal(err)
	}
	for _, mac := range []string{"52:54:00:00:00:01", "00:00:5e:00:01:0a"} {
		if e := k.fdb[fdbKey{mac, 0}]; e.PortIndex != 10 || e.NTFlags != model.NTFMaster|model.NTFSticky || e.State != model.NUDNoARP {
			t.Errorf("entry for %s = %+v, want static sticky master on port 10", mac, e)
		}
	}
	if k.flags[10] != (model.Flags{Locked: true}) {
		t.Errorf("port flags %v, want learning off flood off locked on", k.flags[10])
	}
	if want := featureSteps()[0].Vlans; !slices.Equal(k.vlans[10], want) {
		t.Errorf("port VLANs %v, want %v", k.vlans[10], want)
	}
}

// TestApplyFeaturesFailAtEveryCall: whichever call fails, the port's
// VLANs, entries and flags end as they began.
func TestApplyFeaturesFailAtEveryCall(t *testing.T) {
	for n := 1; n <= 5; n++ { // getvlans, setvlans, replace, replace, flags
		t.Run(fmt.Sprintf("call%d", n), func(t *testing.T) {
			k := newVlanFake()
			before := k.snapshot()
			k.failAt = n
			err := Apply(k, featureSteps())
			var se *StepError
			if !errors.As(err, &se) || se.UndoErr != nil {
				t.Fatalf("Apply = %v, want a StepError with a clean undo", err)
			}
			if after := k.snapshot(); after != before {
				t.Errorf("kernel changed by a failed apply:\nbefore %s\nafter  %s\ncalls %v", before, after, k.history)
			}
		})
	}
}

func TestVlanStepNeedsVlanWriter(t *testing.T) {
	k := newFake()
	err := Apply(k, featureSteps())
	if !errors.Is(err, errNoVlans) {
		t.Fatalf("Apply with a Writer without VLANs = %v, want errNoVlans", err)
	}
	if len(k.fdb) != 0 || k.flags[10] != (model.Flags{Learning: true, Flood: true}) {
		t.Errorf("changed the kernel: %s", k.snapshot())
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
	k.fdb[fdbKey{ext.MAC, 0}] = ext
	if err := Apply(k, []plan.Step{step}); err != nil {
		t.Fatal(err)
	}
	if e := k.fdb[fdbKey{ext.MAC, 0}]; e.PortIndex != 10 || e.NTFlags != model.NTFMaster || !slices.Equal(k.history, []string{"delete", "replace"}) {
		t.Errorf("entry %+v after %v, want a plain static entry on port 10 written after deleting the extern_learn one", e, k.history)
	}
	k = newFake()
	k.fdb[fdbKey{ext.MAC, 0}] = ext
	k.failAt = 2
	if err := Apply(k, []plan.Step{step}); err == nil {
		t.Fatal("Apply succeeded despite the injected failure")
	}
	if e := k.fdb[fdbKey{ext.MAC, 0}]; e != ext {
		t.Errorf("after a failed write the extern_learn entry is %+v, want %+v back", e, ext)
	}
}
