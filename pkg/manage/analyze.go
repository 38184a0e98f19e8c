package manage

import (
	"fmt"
	"slices"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// NICRef is one NIC of a running guest that has a host-side port.
type NICRef struct {
	Guest string
	NIC   string // alias, e.g. net0
	MAC   string
	// MACs are the NIC's MAC, the extra MACs its metadata declares and
	// the MACs it follows (undeclared_macs = "follow").
	MACs []string
	// Followed are the MACs it follows, also in MACs; FollowFull: it
	// reached follow_max, and its port's MAB is off.
	Followed   []string
	FollowFull bool
	Port       string
	// Managed is true when a start would manage the NIC; Why says why not.
	Managed bool
	Why     string
}

func (r *NICRef) Label() string { return r.Guest + " " + r.NIC }

// GuestPlan is the start plan of one running guest.
type GuestPlan struct {
	Guest *guest.Guest
	Plan  *plan.Plan
	Err   error
}

// Analysis joins the running guests' NICs, their start plans and the
// kernel's state: what status reports and what decides which static
// entries are stale (Classify).
type Analysis struct {
	State   *State
	Plans   []GuestPlan
	byPort  map[string]*NICRef   // port name → running guest's NIC
	byMAC   map[string][]*NICRef // MAC → running guests' NICs
	defined map[string]string    // MAC → a defined guest that is not running
}

// Analyze plans every running guest's start against the snapshot; it
// fails only when the definitions cannot be read.
func Analyze(st *State) (*Analysis, error) {
	defined, err := st.Definitions()
	if err != nil {
		return nil, err
	}
	a := &Analysis{State: st, byPort: map[string]*NICRef{}, byMAC: map[string][]*NICRef{}, defined: map[string]string{}}
	v := st.view()
	running := map[string]bool{}
	for _, g := range st.Running {
		running[g.Name] = true
		p, err := st.startPlan(g, v)
		a.Plans = append(a.Plans, GuestPlan{Guest: g, Plan: p, Err: err})
		for _, n := range g.NICs {
			if n.BadMAC != nil {
				continue
			}
			ref := &NICRef{Guest: g.Name, NIC: n.Label(), MAC: n.MAC, MACs: g.Metadata(n).MACs(), Followed: g.Metadata(n).Followed, FollowFull: g.Metadata(n).FollowFull, Port: n.Target}
			ref.Managed, ref.Why = planned(p, err, n.Label())
			if n.Target != "" {
				a.byPort[n.Target] = ref
			}
			for _, mac := range ref.MACs {
				a.byMAC[mac] = append(a.byMAC[mac], ref)
			}
		}
	}
	for _, g := range defined {
		if running[g.Name] {
			continue
		}
		for _, n := range g.NICs {
			if n.BadMAC == nil {
				if _, seen := a.defined[n.MAC]; !seen {
					a.defined[n.MAC] = g.Name
				}
			}
		}
	}
	return a, nil
}

// planned reports whether plan p manages the NIC labelled nic, or why not.
func planned(p *plan.Plan, err error, nic string) (bool, string) {
	if err != nil {
		return false, err.Error()
	}
	for _, s := range p.Steps {
		if s.Kind == plan.AddEntry && s.NIC == nic {
			return true, ""
		}
	}
	for _, s := range p.Skips {
		if s.NIC == nic {
			return false, s.Reason
		}
	}
	for _, r := range p.Refusals {
		if r.NIC == nic {
			return false, "refused: " + r.Cause
		}
	}
	return false, "not managed"
}

// Port kinds.
const (
	KindGuest  = "guest"  // a tap or veth of a running guest
	KindOther  = "other"  // a tap or veth that no running guest owns
	KindUplink = "uplink" // any other port: NIC, bond, VLAN, VXLAN, …
)

// portKind classifies a bridge port.
func (a *Analysis) PortKind(p *model.Link) (string, *NICRef) {
	if !p.IsGuestPort() {
		return KindUplink, nil
	}
	if ref := a.byPort[p.Name]; ref != nil {
		return KindGuest, ref
	}
	return KindOther, nil
}

// device names a port's device kind in a word.
func Device(l *model.Link) string {
	switch {
	case l.IsTap():
		return "tap"
	case l.Type == "tuntap":
		return "tun"
	case l.Type == "device":
		return "nic"
	case l.Type == "":
		return "?"
	}
	return l.Type
}

// Entry states.
const (
	EntryOK      = "ok"      // on the port of the guest NIC with that MAC
	EntryRoamed  = "roamed"  // a running guest's MAC, on a port that is not its own
	EntryStale   = "stale"   // left behind by a guest that is gone: reconcile deletes it
	EntryUnknown = "unknown" // not fdbhook's to judge: reported, never deleted
)

// classify says whose a static entry on a managed bridge is, and whether
// reconcile may delete it. It errs on the side of "unknown": only entries
// on a tap no running guest holds, and entries on an uplink for the MAC of
// a guest that is defined but not running, are stale.
func (a *Analysis) Classify(e model.Entry) (state string, owner *NICRef, why string) {
	port := a.State.Kernel.DeviceByIndex(e.PortIndex)
	if port == nil {
		return EntryUnknown, nil, fmt.Sprintf("port %d no longer exists", e.PortIndex)
	}
	refs := a.byMAC[e.MAC]
	if port.IsGuestPort() {
		if ref := a.byPort[port.Name]; ref != nil {
			if slices.Contains(ref.MACs, e.MAC) {
				if k := a.keeperOf(ref, e.MAC, port); k != nil {
					return EntryRoamed, k, fmt.Sprintf("%s's MAC is on %s, the port of %s, which has it too but does not keep it (a duplicate MAC)", k.Label(), port.Name, ref.Label())
				}
				return EntryOK, ref, ""
			}
			if len(refs) > 0 {
				return EntryRoamed, owning(refs), fmt.Sprintf("%s's MAC is on %s, the port of %s", owning(refs).Label(), port.Name, ref.Label())
			}
			return EntryUnknown, nil, fmt.Sprintf("on %s's port, but no running guest has this MAC (an address behind the guest?)", ref.Label())
		}
		switch {
		case !port.IsTap():
			return EntryUnknown, nil, fmt.Sprintf("%s is a %s no running guest owns; fdbhook never writes entries there", port.Name, Device(port))
		case !a.State.RunningComplete:
			return EntryUnknown, nil, fmt.Sprintf("no known running guest owns tap %s, but some live XML could not be read", port.Name)
		case port.Carrier:
			return EntryUnknown, nil, fmt.Sprintf("no running guest owns tap %s, but a process holds it open (a guest starting?)", port.Name)
		}
		return EntryStale, nil, fmt.Sprintf("no running guest owns tap %s", port.Name)
	}
	if len(refs) > 0 {
		o := owning(refs)
		return EntryRoamed, o, fmt.Sprintf("%s's MAC is on %s %s instead of its port %s", o.Label(), Device(port), port.Name, o.Port)
	}
	if g, ok := a.defined[e.MAC]; ok {
		return EntryStale, nil, fmt.Sprintf("guest %s has this MAC and is not running", g)
	}
	return EntryUnknown, nil, "no known guest has this MAC"
}

// keeperOf returns the running guest's NIC that keeps mac when it is not
// ref's, whose port (on its bridge) holds the entry: a duplicate MAC
// (DecideMAC); nil when ref keeps it.
func (a *Analysis) keeperOf(ref *NICRef, mac string, port *model.Link) *NICRef {
	br := a.State.Kernel.DeviceByIndex(port.MasterIndex)
	if br == nil {
		return nil
	}
	d, err := a.State.DecideMAC(MACQuestion{Guest: ref.Guest, NIC: ref.NIC, MAC: mac, Port: port, Bridge: br, Rewrite: true})
	if err != nil || d.Action != RefuseNIC || d.Owner == nil {
		return nil
	}
	return a.byPort[d.Owner.Port]
}

// owning picks, of the running guests' NICs with a MAC, the one managed
// first: the one whose entry it is when the MAC is a duplicate.
func owning(refs []*NICRef) *NICRef {
	if i := slices.IndexFunc(refs, func(r *NICRef) bool { return r.Managed }); i >= 0 {
		return refs[i]
	}
	return refs[0]
}

// staticEntries returns the bridge's static entries on its ports (not on
// the bridge device itself).
func StaticEntries(all []model.Entry, br *model.Link) []model.Entry {
	return slices.DeleteFunc(slices.Clone(all), func(e model.Entry) bool {
		return !e.Static() || e.PortIndex == br.Index
	})
}

// Bridges are the managed bridges (State.Bridges) and the bridges the
// running guests' managed ports are really on: the kernel is the truth for
// a network NIC whose bridge moved. notes say which networks could not be
// resolved.
func (a *Analysis) Bridges() (bridges []*ManagedBridge, notes []string) {
	bridges, notes = a.State.Bridges()
	for _, gp := range a.Plans {
		if gp.Err != nil {
			continue
		}
		for _, s := range gp.Plan.Steps {
			if s.Kind == plan.AddEntry && !slices.ContainsFunc(bridges, func(b *ManagedBridge) bool { return b.Name == s.Bridge }) {
				bridges = append(bridges, &ManagedBridge{Name: s.Bridge, Sources: []string{"guest NICs"}, Managed: true})
			}
		}
	}
	return bridges, notes
}
