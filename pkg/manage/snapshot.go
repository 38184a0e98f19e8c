package manage

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// Snapshot is the kernel state the admin commands decide from: every device
// from one link dump, and each bridge's FDB from one dump (taken the first
// time the bridge is asked about), indexed by MAC. It serves plan.View's
// kernel lookups from memory, so planning hundreds of guests costs no
// netlink round trips. Record mirrors into it what a carried-out step did.
type Snapshot struct {
	r        model.Reader
	links    map[int]*model.Link
	byName   map[string]*model.Link
	byMaster map[int][]*model.Link
	fdb      map[int]map[string][]model.Entry // bridge index → MAC → entries
	// looked holds, after LookUp, the entries read one MAC at a time,
	// by bridge index and MAC (lookup.go).
	looked map[int]map[string][]model.Entry
}

// Take dumps every device through r. FDB dumps follow, one per bridge,
// when a bridge's entries are first needed.
func Take(r model.Reader) (*Snapshot, error) {
	links, err := r.Links()
	if err != nil {
		return nil, err
	}
	s := &Snapshot{r: r, links: map[int]*model.Link{}, byName: map[string]*model.Link{},
		byMaster: map[int][]*model.Link{}, fdb: map[int]map[string][]model.Entry{}}
	for _, l := range links {
		s.links[l.Index] = l
		s.byName[l.Name] = l
	}
	for _, l := range links {
		if l.MasterIndex != 0 {
			s.byMaster[l.MasterIndex] = append(s.byMaster[l.MasterIndex], l)
		}
	}
	for _, ports := range s.byMaster {
		slices.SortFunc(ports, func(a, b *model.Link) int { return cmp.Compare(a.Name, b.Name) })
	}
	return s, nil
}

// Device returns the device called name, or nil.
func (s *Snapshot) Device(name string) *model.Link { return s.byName[name] }

// DeviceByIndex returns the device with that index, or nil.
func (s *Snapshot) DeviceByIndex(index int) *model.Link { return s.links[index] }

// Devices returns every device, sorted by name.
func (s *Snapshot) Devices() []*model.Link {
	out := make([]*model.Link, 0, len(s.links))
	for _, l := range s.links {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *model.Link) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Links implements plan.View: every device, sorted by name.
func (s *Snapshot) Links() ([]*model.Link, error) { return s.Devices(), nil }

// PortVlans implements plan.View: the snapshot holds no VLANs, so it asks
// the kernel.
func (s *Snapshot) PortVlans(portIndex int) ([]model.Vlan, error) { return s.r.PortVlans(portIndex) }

// NetnsIDOfPid implements plan.View: it asks the kernel.
func (s *Snapshot) NetnsIDOfPid(pid int) (int, error) { return s.r.NetnsIDOfPid(pid) }

// Prefetch implements plan.View: the snapshot has read ahead already,
// unless it looks entries up (LookUp): then the kernel reads ahead.
func (s *Snapshot) Prefetch(ports map[string][]string) {
	if s.looked != nil {
		s.r.Prefetch(ports)
	}
}

// Ports returns the devices enslaved to bridge, sorted by name.
func (s *Snapshot) Ports(bridge *model.Link) []*model.Link { return s.byMaster[bridge.Index] }

// Link implements plan.View.
func (s *Snapshot) Link(name string) (*model.Link, error) { return s.byName[name], nil }

// LinkByIndex implements plan.View.
func (s *Snapshot) LinkByIndex(index int) (*model.Link, error) { return s.links[index], nil }

// bridgeFDB returns the bridge's entries by MAC, dumping them once.
func (s *Snapshot) bridgeFDB(bridge *model.Link) (map[string][]model.Entry, error) {
	if m, ok := s.fdb[bridge.Index]; ok {
		return m, nil
	}
	entries, err := s.r.BridgeEntries(bridge)
	if err != nil {
		return nil, fmt.Errorf("dumping the FDB of %s: %w", bridge.Name, err)
	}
	m := make(map[string][]model.Entry, len(entries))
	for _, e := range entries {
		m[e.MAC] = append(m[e.MAC], e)
	}
	s.fdb[bridge.Index] = m
	return m, nil
}

// Entries implements plan.View: the entries for mac on bridge, every VLAN.
func (s *Snapshot) Entries(bridge *model.Link, mac string) ([]model.Entry, error) {
	if s.lookingUp(bridge) {
		return s.lookUp(bridge, mac)
	}
	m, err := s.bridgeFDB(bridge)
	if err != nil {
		return nil, err
	}
	return slices.Clone(m[mac]), nil
}

// PortEntries implements plan.View.
func (s *Snapshot) PortEntries(bridge, port *model.Link) ([]model.Entry, error) {
	if s.lookingUp(bridge) {
		return s.r.PortEntries(bridge, port)
	}
	all, err := s.BridgeEntries(bridge)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(e model.Entry) bool { return e.PortIndex != port.Index }), nil
}

// BridgeEntries returns every FDB entry of bridge, sorted by MAC, VLAN and port.
func (s *Snapshot) BridgeEntries(bridge *model.Link) ([]model.Entry, error) {
	m, err := s.bridgeFDB(bridge)
	if err != nil {
		return nil, err
	}
	var out []model.Entry
	for _, es := range m {
		out = append(out, es...)
	}
	slices.SortFunc(out, func(a, b model.Entry) int {
		return cmp.Or(cmp.Compare(a.MAC, b.MAC), cmp.Compare(a.Vlan, b.Vlan), cmp.Compare(a.Port, b.Port))
	})
	return out, nil
}

// Record mirrors a carried-out step into the snapshot, so that later plans
// see its effect without another dump. An added entry replaces every
// non-local entry of its MAC on the bridge (the kernel's replace moves the
// entry, and on a VLAN-filtering bridge writes the port's VLANs too); a
// deleted entry without a VLAN takes the port's per-VLAN copies with it.
func (s *Snapshot) Record(st plan.Step) {
	s.forgetLooked(st)
	switch st.Kind {
	case plan.EnableVlanFiltering:
		if b := s.links[st.BridgeIndex]; b != nil {
			b.VlanFiltering = true
		}
	case plan.SetFlags:
		if p := s.links[st.PortIndex]; p != nil {
			p.Flags = st.Flags
		}
	case plan.AddEntry:
		m, ok := s.fdb[st.BridgeIndex]
		if !ok {
			return // not dumped yet: the dump will show it
		}
		e := model.Entry{MAC: st.MAC, Port: st.Port, PortIndex: st.PortIndex, State: model.NUDNoARP, NTFlags: model.NTFMaster}
		if st.Sticky {
			e.NTFlags |= model.NTFSticky
		}
		m[st.MAC] = append(slices.DeleteFunc(m[st.MAC], func(e model.Entry) bool { return !e.Local() }), e)
	case plan.ExtendEntry:
		// The kernel copied the entry to each VLAN of the port, which the
		// snapshot does not know: the next question dumps the FDB again.
		s.Forget(st.BridgeIndex)
	case plan.DelEntry:
		m, ok := s.fdb[st.BridgeIndex]
		if !ok {
			return
		}
		e := st.Entry
		m[e.MAC] = slices.DeleteFunc(m[e.MAC], func(x model.Entry) bool {
			return x.PortIndex == e.PortIndex && (e.Vlan == 0 || x.Vlan == e.Vlan)
		})
		if len(m[e.MAC]) == 0 {
			delete(m, e.MAC)
		}
	}
}

// Forget drops what the snapshot knows of a bridge's FDB; the next question
// dumps it again. For when the kernel's state is no longer known, e.g.
// after an undo that failed.
func (s *Snapshot) Forget(bridgeIndex int) {
	delete(s.fdb, bridgeIndex)
	delete(s.looked, bridgeIndex)
}
