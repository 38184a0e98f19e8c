package manage

import (
	"maps"
	"slices"

	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// LookUp makes the snapshot read FDB entries from the kernel one MAC at a
// time (model.Reader.Entries: an RTM_GETNEIGH get per MAC and VLAN) and
// one port at a time (PortEntries: a dump the kernel filters by port),
// instead of dumping each bridge's whole FDB the first time it is asked
// about. BridgeEntries still dumps, and a bridge once dumped is answered
// from its dump.
//
// For the watcher, whose batches plan a guest or a few: the cost of one
// then follows its MACs, not the bridge's FDB. A bridge whose uplink is on
// a busy segment holds tens of thousands of learned entries, and the
// kernel's dump of them costs more than linear time (each dump message
// walks the table from its start again: 0.2 s of CPU for 65,000 entries
// here), for every batch.
func (s *Snapshot) LookUp() {
	if s.looked == nil {
		s.looked = map[int]map[string][]model.Entry{}
	}
}

// lookingUp reports whether entries of bridge are read per MAC.
func (s *Snapshot) lookingUp(bridge *model.Link) bool {
	_, dumped := s.fdb[bridge.Index]
	return s.looked != nil && !dumped
}

// lookUp returns the entries for mac on bridge, read once.
func (s *Snapshot) lookUp(bridge *model.Link, mac string) ([]model.Entry, error) {
	m := s.looked[bridge.Index]
	if es, ok := m[mac]; ok {
		return slices.Clone(es), nil
	}
	es, err := s.r.Entries(bridge, mac)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string][]model.Entry{}
		s.looked[bridge.Index] = m
	}
	m[mac] = es
	return slices.Clone(es), nil
}

// forgetLooked drops what a carried-out step may have changed: the
// entries of its MAC (of every MAC of the bridge when the kernel copied
// entries to VLANs); the next question reads them again.
func (s *Snapshot) forgetLooked(st plan.Step) {
	switch st.Kind {
	case plan.AddEntry, plan.DelEntry:
		delete(s.looked[st.BridgeIndex], st.MAC)
		delete(s.looked[st.BridgeIndex], st.Entry.MAC)
	case plan.ExtendEntry:
		delete(s.looked, st.BridgeIndex)
	}
}

// staleCandidates returns the entries of br that cleaning looks at: every
// entry, from one dump; or, once the snapshot looks entries up (LookUp),
// those that can be stale (classify): the entries on the bridge's taps
// that no running guest owns, each tap's read by the kernel's port filter,
// and the entries for defined guests' MACs, one get each. Static entries
// for MACs no guest has, on ports no guest owns, are then not listed as
// "left alone": on a busy bridge those are whatever the segment holds,
// and the one dump that lists them is what the watcher's resyncs must
// not pay.
func (a *Analysis) staleCandidates(br *model.Link) ([]model.Entry, error) {
	k := a.State.Kernel
	if !k.lookingUp(br) {
		return k.BridgeEntries(br)
	}
	var out []model.Entry
	for _, port := range k.Ports(br) {
		if !port.IsTap() || a.byPort[port.Name] != nil {
			continue
		}
		es, err := k.PortEntries(br, port)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	for _, mac := range slices.Sorted(maps.Keys(a.defined)) {
		es, err := k.Entries(br, mac)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if !slices.ContainsFunc(out, func(o model.Entry) bool { return o.MAC == e.MAC && o.PortIndex == e.PortIndex && o.Vlan == e.Vlan }) {
				out = append(out, e)
			}
		}
	}
	return out, nil
}
