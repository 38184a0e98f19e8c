package kerneltest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// Side is a kernel the conformance sequence drives: its writes; how to
// read it back (Read may open a fresh connection each time, so that no
// cache hides a change); and what happens to a port outside fdbhook,
// Release taking it off its bridge, Remove deleting it, and Frame a frame
// from source MAC mac arriving on up0 (the real side returns once the
// bridge has taken it); nil Frame leaves the locked entries out.
type Side struct {
	W       model.Writer
	Read    func(t *testing.T) model.Reader
	Release func(port string) error
	Remove  func(name string) error
	Frame   func(mac string) error
}

// conformanceMACs are the MACs the sequence writes; the entries of other
// MACs (the devices' own, which the kernel adds) are not compared.
var conformanceMACs = []string{"02:fd:00:00:00:01", "02:fd:00:00:00:02", "02:fd:00:00:00:03", "02:fd:00:00:00:04", "02:fd:00:00:00:05", "02:fd:00:00:00:06"}

// ConformanceDevices are the devices Conform expects the real kernel to
// have: bridge br0 with the tap fdbtk0 and the veths up0, p1 and p2 as its
// ports, bridge br1 with the veth q1, and up1, a device on no bridge, all
// as a new port is.
var ConformanceDevices = []string{"br0", "fdbtk0", "up0", "up1", "p1", "p2", "br1", "q1"}

// Conform runs one sequence of writes against real, a kernel with
// ConformanceDevices, and against a fake started from the devices real
// has, and after each write compares the error and everything read back:
// the devices' flags and masters, vlan_filtering, port VLANs, and the
// entries of the sequence's MACs by bridge, by MAC and by port, with their
// state, flags and VLANs. It is what keeps the fake, and so every unit
// test, true to the kernel: run against each kind of kernel fdbhook meets
// (without bridge VLANs on the development host, with them in the VM
// suite).
func Conform(t *testing.T, real Side) {
	t.Helper()
	fake := fakeOf(t, real.Read(t))
	sim := Side{W: fake, Read: func(*testing.T) model.Reader { return fake },
		Release: func(port string) error { fake.Move(port, ""); return nil },
		Remove:  func(name string) error { fake.Delete(name); return nil },
		Frame:   func(mac string) error { fake.Learn("up0", mac); return nil }}
	br := fake.Device("br0")
	if br == nil {
		t.Fatal("the kernel has no br0")
	}
	if !br.VlanCapable {
		t.Log("this kernel has no bridge VLAN filtering: the VLAN writes are compared as refusals, the entries for VLAN 0 only")
	}
	idx := devices{}
	for _, n := range ConformanceDevices {
		if idx[n] = fake.Index(n); idx[n] == 0 {
			t.Fatalf("the kernel has no %s", n)
		}
	}
	steps := idx.steps()
	switch up0 := fake.Device("up0"); {
	case up0 == nil || !up0.MabCapable:
		t.Log("this kernel has no MAC Authentication Bypass (IFLA_BRPORT_MAB): its flag and locked entries are not compared")
	case real.Frame == nil:
		t.Log("no frames on this side: MAB and locked entries are not compared")
	default:
		steps = slices.Concat(idx.entrySteps(), idx.portSteps(), idx.mabSteps(), idx.leavingSteps())
	}
	for i, st := range steps {
		errReal, errFake := st.do(real), st.do(sim)
		if errno(errReal) != errno(errFake) {
			t.Errorf("step %d, %s: the kernel says %v, the fake %v", i+1, st.what, errReal, errFake)
		}
		got, want := describe(t, sim.Read(t)), describe(t, real.Read(t))
		if got != want {
			t.Fatalf("step %d, %s: the fake reads back\n%s\nthe kernel\n%s", i+1, st.what, got, want)
		}
	}
}

// conformStep is one write of the sequence, done the same way on either
// side.
type conformStep struct {
	what string
	do   func(s Side) error
}

// devices are the indexes of ConformanceDevices.
type devices map[string]int

// static is a static entry for mac on port, for vlan.
func (idx devices) static(mac, port string, vlan int) model.Entry {
	return model.Entry{MAC: mac, PortIndex: idx[port], Vlan: vlan, State: model.NUDNoARP, NTFlags: model.NTFMaster}
}

// steps is Conform's sequence: entries, then port flags and VLANs, then
// devices leaving.
func (idx devices) steps() []conformStep {
	return slices.Concat(idx.entrySteps(), idx.portSteps(), idx.leavingSteps())
}

// entrySteps writes and deletes entries, some refused.
func (idx devices) entrySteps() []conformStep {
	a, b, c, d := conformanceMACs[0], conformanceMACs[1], conformanceMACs[2], conformanceMACs[3]
	sticky := idx.static(b, "fdbtk0", 0)
	sticky.NTFlags |= model.NTFSticky
	ext := model.Entry{MAC: d, PortIndex: idx["up0"], State: nudReachable, NTFlags: model.NTFMaster | model.NTFExtLearn}
	return []conformStep{
		{"replace a on fdbtk0", func(s Side) error { return s.W.ReplaceEntry(idx.static(a, "fdbtk0", 0)) }},
		{"replace a on up0: the entry moves", func(s Side) error { return s.W.ReplaceEntry(idx.static(a, "up0", 0)) }},
		{"replace a on up0 again", func(s Side) error { return s.W.ReplaceEntry(idx.static(a, "up0", 0)) }},
		{"replace a on q1, on br1: br0's entry stays", func(s Side) error { return s.W.ReplaceEntry(idx.static(a, "q1", 0)) }},
		{"replace b sticky on fdbtk0", func(s Side) error { return s.W.ReplaceEntry(sticky) }},
		{"replace b on p1, not sticky", func(s Side) error { return s.W.ReplaceEntry(idx.static(b, "p1", 0)) }},
		{"delete a on fdbtk0, where it is not", func(s Side) error { return s.W.DeleteEntry(idx.static(a, "fdbtk0", 0)) }},
		{"delete a on up0", func(s Side) error { return s.W.DeleteEntry(idx.static(a, "up0", 0)) }},
		{"delete a on up0 again", func(s Side) error { return s.W.DeleteEntry(idx.static(a, "up0", 0)) }},
		{"replace on a missing device", func(s Side) error {
			return s.W.ReplaceEntry(model.Entry{MAC: a, PortIndex: 1 << 20, State: model.NUDNoARP})
		}},
		{"delete on a missing device", func(s Side) error { return s.W.DeleteEntry(model.Entry{MAC: a, PortIndex: 1 << 20}) }},
		{"replace on a device without a bridge", func(s Side) error { return s.W.ReplaceEntry(idx.static(a, "up1", 0)) }},
		{"replace for a VLAN the port does not have", func(s Side) error { return s.W.ReplaceEntry(idx.static(c, "p2", 10)) }},
		{"delete for a VLAN the entry is not in", func(s Side) error { return s.W.DeleteEntry(idx.static(b, "p1", 10)) }},
		{"delete on a device without a bridge", func(s Side) error { return s.W.DeleteEntry(idx.static(a, "up1", 0)) }},
		{"replace without a state", func(s Side) error { return s.W.ReplaceEntry(model.Entry{MAC: c, PortIndex: idx["p2"]}) }},
		{"replace d extern_learn on up0", func(s Side) error { return s.W.ReplaceEntry(ext) }},
		{"replace d static on fdbtk0: moves, keeps extern_learn", func(s Side) error { return s.W.ReplaceEntry(idx.static(d, "fdbtk0", 0)) }},
	}
}

// portSteps sets port flags, port VLANs and vlan_filtering, and writes
// entries for the VLANs.
func (idx devices) portSteps() []conformStep {
	c := conformanceMACs[2]
	vlan10 := []model.Vlan{{ID: 10}}
	pvid20 := []model.Vlan{{ID: 20, Pvid: true, Untagged: true}}
	return []conformStep{
		{"learning and flood off on fdbtk0", func(s Side) error { return s.W.SetPortFlags(idx["fdbtk0"], model.Flags{}, false, false) }},
		{"learning on flood off on p1", func(s Side) error { return s.W.SetPortFlags(idx["p1"], model.Flags{Learning: true}, false, false) }},
		{"fdbtk0 locked", func(s Side) error { return s.W.SetPortFlags(idx["fdbtk0"], model.Flags{Locked: true}, true, false) }},
		{"fdbtk0 learning on, locked left as it is", func(s Side) error { return s.W.SetPortFlags(idx["fdbtk0"], model.Flags{Learning: true}, false, false) }},
		{"fdbtk0 unlocked, learning off", func(s Side) error { return s.W.SetPortFlags(idx["fdbtk0"], model.Flags{}, true, false) }},
		{"flags of a missing device", func(s Side) error { return s.W.SetPortFlags(1<<20, model.Flags{}, false, false) }},
		{"flags of a device without a bridge", func(s Side) error { return s.W.SetPortFlags(idx["up1"], model.Flags{}, false, false) }},
		{"add VLAN 10 to a device without a bridge", func(s Side) error { return s.W.AddPortVlans(idx["up1"], vlan10) }},
		{"delete VLAN 10 from a device without a bridge", func(s Side) error { return s.W.DelPortVlans(idx["up1"], vlan10) }},
		{"add VLAN 10 to a missing device", func(s Side) error { return s.W.AddPortVlans(1<<20, vlan10) }},
		{"add VLAN 10 to p2", func(s Side) error { return s.W.AddPortVlans(idx["p2"], vlan10) }},
		{"make VLAN 20 p2's pvid", func(s Side) error { return s.W.AddPortVlans(idx["p2"], pvid20) }},
		{"replace c on p2: VLAN 0 and p2's VLANs", func(s Side) error { return s.W.ReplaceEntry(idx.static(c, "p2", 0)) }},
		{"replace c on p2 for VLAN 10", func(s Side) error { return s.W.ReplaceEntry(idx.static(c, "p2", 10)) }},
		{"delete c on p2 for VLAN 10", func(s Side) error { return s.W.DeleteEntry(idx.static(c, "p2", 10)) }},
		{"delete VLAN 10 from p2", func(s Side) error { return s.W.DelPortVlans(idx["p2"], vlan10) }},
		{"delete VLAN 10 from p2 again", func(s Side) error { return s.W.DelPortVlans(idx["p2"], vlan10) }},
		{"replace c on p1", func(s Side) error { return s.W.ReplaceEntry(idx.static(c, "p1", 0)) }},
		{"vlan_filtering on", func(s Side) error { return s.W.SetVlanFiltering(idx["br0"], true) }},
		{"vlan_filtering off", func(s Side) error { return s.W.SetVlanFiltering(idx["br0"], false) }},
	}
}

// mabSteps locks up0 with MAC Authentication Bypass (what a port of a guest
// whose undeclared MACs are reported gets), has frames arrive on it from
// MACs without an entry, and turns MAB off again; MAB where the port does
// not learn or is not locked is refused.
func (idx devices) mabSteps() []conformStep {
	e, f := conformanceMACs[4], conformanceMACs[5]
	frame := func(mac string) func(s Side) error { return func(s Side) error { return s.Frame(mac) } }
	up0 := func(fl model.Flags, withMab bool) func(s Side) error {
		return func(s Side) error { return s.W.SetPortFlags(idx["up0"], fl, true, withMab) }
	}
	return []conformStep{
		{"up0 mab on, not locked: refused", up0(model.Flags{Learning: true, Flood: true, Mab: true}, true)},
		{"up0 mab on, locked, learning off: refused", up0(model.Flags{Locked: true, Mab: true}, true)},
		{"up0 learning on flood off locked on mab on", up0(model.Reporting, true)},
		{"a frame from e on up0: a locked entry", frame(e)},
		{"a frame from e on up0 again: still one locked entry", frame(e)},
		{"up0 learning off, mab left on: refused", up0(model.Flags{Locked: true}, false)},
		{"replace e static on up0: the MAC is authorised", func(s Side) error { return s.W.ReplaceEntry(idx.static(e, "up0", 0)) }},
		{"a frame from f on up0: a locked entry", frame(f)},
		{"up0 mab off: its locked entries go", up0(model.Flags{Learning: true, Locked: true}, true)},
		{"a frame from f on up0 without MAB: no entry", frame(f)},
		{"up0 learning and flood on, unlocked", up0(model.Flags{Learning: true, Flood: true}, true)},
		{"delete e on up0", func(s Side) error { return s.W.DeleteEntry(idx.static(e, "up0", 0)) }},
	}
}

// leavingSteps takes devices off the bridges, and pipelines writes.
func (idx devices) leavingSteps() []conformStep {
	a, b, c, d := conformanceMACs[0], conformanceMACs[1], conformanceMACs[2], conformanceMACs[3]
	return []conformStep{
		{"p1 leaves the bridge: its entries go, its flags are reset", func(s Side) error { return s.Release("p1") }},
		{"replace a on p2", func(s Side) error { return s.W.ReplaceEntry(idx.static(a, "p2", 0)) }},
		{"p2 is deleted: its entries go", func(s Side) error { return s.Remove("p2") }},
		{"br1 is deleted: q1 is on no bridge and its entries are gone", func(s Side) error { return s.Remove("br1") }},
		{"pipelined: a replace, a write to a missing device, flags, a delete of an absent entry", func(s Side) error {
			return answers(s.W.Pipeline(func() {
				s.W.ReplaceEntry(idx.static(b, "fdbtk0", 0))
				s.W.ReplaceEntry(model.Entry{MAC: c, PortIndex: 1 << 20, State: model.NUDNoARP})
				s.W.SetPortFlags(idx["up0"], model.Flags{Flood: true}, false, false)
				s.W.DeleteEntry(idx.static(c, "fdbtk0", 0))
			}))
		}},
		{"delete d on fdbtk0", func(s Side) error { return s.W.DeleteEntry(idx.static(d, "fdbtk0", 0)) }},
	}
}

// fakeOf returns a fake with the devices r has, their VLANs included.
func fakeOf(t *testing.T, r model.Reader) *Kernel {
	t.Helper()
	links, err := r.Links()
	if err != nil {
		t.Fatal(err)
	}
	// bridges first, so that Add enslaves their ports
	slices.SortStableFunc(links, func(a, b *model.Link) int { return boolRank(b.Type == "bridge") - boolRank(a.Type == "bridge") })
	k := New()
	for _, l := range links {
		k.Add(l)
	}
	for _, l := range links {
		vl, err := r.PortVlans(l.Index)
		if err != nil {
			t.Fatal(err)
		}
		k.SetVlans(l.Name, vl...)
	}
	return k
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// answers describes a Pipeline's answers as one error (nil when all are
// nil), each answer by its errno, so that two sides' answers compare.
func answers(errs []error) error {
	var out []string
	for _, err := range errs {
		out = append(out, errno(err))
	}
	if !slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		return nil
	}
	return errors.New("answers " + strings.Join(out, ", "))
}

// errno reduces an error to what the comparison cares about: none, the
// kernel's errno, or "other".
func errno(err error) string {
	var e syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e):
		return e.Error()
	}
	return "other: " + err.Error()
}

// describe reads back, through r, what the comparison covers, as text.
func describe(t *testing.T, r model.Reader) string {
	t.Helper()
	var b strings.Builder
	for _, n := range ConformanceDevices {
		l, err := r.Link(n)
		if err != nil {
			t.Fatalf("reading %s: %v", n, err)
		}
		if l == nil {
			fmt.Fprintf(&b, "%s: none\n", n)
			continue
		}
		vl, err := r.PortVlans(l.Index)
		if err != nil {
			t.Fatalf("reading the VLANs of %s: %v", n, err)
		}
		fmt.Fprintf(&b, "%s: master %q %s vlans %v", n, l.Master, l.Flags.Words(l.LockCapable), vl)
		if l.Type == "bridge" {
			fmt.Fprintf(&b, " vlan_filtering %v\n", l.VlanFiltering)
			describeBridge(t, &b, r, l)
			continue
		}
		if l.MasterIndex != 0 {
			br, err := r.LinkByIndex(l.MasterIndex)
			if err != nil {
				t.Fatal(err)
			}
			pe, err := r.PortEntries(br, l)
			if err != nil {
				t.Fatalf("reading the entries of %s: %v", n, err)
			}
			fmt.Fprintf(&b, " entries %s", entries(pe))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// describeBridge writes a bridge's entries of the sequence's MACs, from one
// dump and looked up by MAC.
func describeBridge(t *testing.T, b *strings.Builder, r model.Reader, br *model.Link) {
	t.Helper()
	all, err := r.BridgeEntries(br)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(b, "  all: %s\n", entries(all))
	for _, mac := range conformanceMACs {
		es, err := r.Entries(br, mac)
		if err != nil {
			t.Fatalf("looking %s up on %s: %v", mac, br.Name, err)
		}
		fmt.Fprintf(b, "  %s: %s\n", mac, entries(es))
	}
}

// entries describes the entries of the sequence's MACs, sorted.
func entries(es []model.Entry) string {
	var out []string
	for _, e := range es {
		if slices.Contains(conformanceMACs, e.MAC) {
			out = append(out, fmt.Sprintf("%s state %#x flags %#x", e, e.State, e.NTFlags))
		}
	}
	slices.Sort(out)
	return "[" + strings.Join(out, ", ") + "]"
}
