package admin

import (
	"fmt"
	"slices"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// nicRef is one NIC of a running guest that has a host-side port.
type nicRef struct {
	Guest string
	NIC   string // alias, e.g. net0
	MAC   string
	// MACs are the NIC's MAC and the extra MACs its metadata declares.
	MACs []string
	Port string
	// Managed is true when a start would manage the NIC; Why says why not.
	Managed bool
	Why     string
}

func (r *nicRef) label() string { return r.Guest + " " + r.NIC }

// guestPlan is the start plan of one running guest.
type guestPlan struct {
	g   *guest.Guest
	p   *plan.Plan
	err error
}

// analysis joins the running guests' NICs, their start plans and the
// kernel's state.
type analysis struct {
	st      *State
	plans   []guestPlan
	byPort  map[string]*nicRef   // port name → running guest's NIC
	byMAC   map[string][]*nicRef // MAC → running guests' NICs
	defined map[string]string    // MAC → a defined guest that is not running
}

// analyze plans every running guest's start against the snapshot.
func analyze(st *State) *analysis {
	a := &analysis{st: st, byPort: map[string]*nicRef{}, byMAC: map[string][]*nicRef{}, defined: map[string]string{}}
	v := st.view()
	running := map[string]bool{}
	for _, g := range st.Running {
		running[g.Name] = true
		p, err := st.startPlan(g, v)
		a.plans = append(a.plans, guestPlan{g: g, p: p, err: err})
		for _, n := range g.NICs {
			if n.BadMAC != nil {
				continue
			}
			ref := &nicRef{Guest: g.Name, NIC: n.Label(), MAC: n.MAC, MACs: append([]string{n.MAC}, g.Metadata(n).ExtraMACs...), Port: n.Target}
			ref.Managed, ref.Why = planned(p, err, n.Label())
			if n.Target != "" {
				a.byPort[n.Target] = ref
			}
			for _, mac := range ref.MACs {
				a.byMAC[mac] = append(a.byMAC[mac], ref)
			}
		}
	}
	for _, g := range st.Defined {
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
	return a
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
func (a *analysis) portKind(p *model.Link) (string, *nicRef) {
	if !p.IsGuestPort() {
		return KindUplink, nil
	}
	if ref := a.byPort[p.Name]; ref != nil {
		return KindGuest, ref
	}
	return KindOther, nil
}

// device names a port's device kind in a word.
func device(l *model.Link) string {
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
func (a *analysis) classify(e model.Entry) (state string, owner *nicRef, why string) {
	port := a.st.Kernel.DeviceByIndex(e.PortIndex)
	if port == nil {
		return EntryUnknown, nil, fmt.Sprintf("port %d no longer exists", e.PortIndex)
	}
	refs := a.byMAC[e.MAC]
	if port.IsGuestPort() {
		if ref := a.byPort[port.Name]; ref != nil {
			if slices.Contains(ref.MACs, e.MAC) {
				if k := a.keeperOf(ref, e.MAC, port); k != nil {
					return EntryRoamed, k, fmt.Sprintf("%s's MAC is on %s, the port of %s, which has it too but does not keep it (a duplicate MAC)", k.label(), port.Name, ref.label())
				}
				return EntryOK, ref, ""
			}
			if len(refs) > 0 {
				return EntryRoamed, owning(refs), fmt.Sprintf("%s's MAC is on %s, the port of %s", owning(refs).label(), port.Name, ref.label())
			}
			return EntryUnknown, nil, fmt.Sprintf("on %s's port, but no running guest has this MAC (an address behind the guest?)", ref.label())
		}
		switch {
		case !port.IsTap():
			return EntryUnknown, nil, fmt.Sprintf("%s is a %s no running guest owns; fdbhook never writes entries there", port.Name, device(port))
		case !a.st.RunningComplete:
			return EntryUnknown, nil, fmt.Sprintf("no known running guest owns tap %s, but some live XML could not be read", port.Name)
		case port.Carrier:
			return EntryUnknown, nil, fmt.Sprintf("no running guest owns tap %s, but a process holds it open (a guest starting?)", port.Name)
		}
		return EntryStale, nil, fmt.Sprintf("no running guest owns tap %s", port.Name)
	}
	if len(refs) > 0 {
		o := owning(refs)
		return EntryRoamed, o, fmt.Sprintf("%s's MAC is on %s %s instead of its port %s", o.label(), device(port), port.Name, o.Port)
	}
	if g, ok := a.defined[e.MAC]; ok {
		return EntryStale, nil, fmt.Sprintf("guest %s has this MAC and is not running", g)
	}
	return EntryUnknown, nil, "no known guest has this MAC"
}

// keeperOf returns the running guest's NIC that keeps mac when it is not
// ref's, whose port (on its bridge) holds the entry: a duplicate MAC
// (DecideMAC); nil when ref keeps it.
func (a *analysis) keeperOf(ref *nicRef, mac string, port *model.Link) *nicRef {
	br := a.st.Kernel.DeviceByIndex(port.MasterIndex)
	if br == nil {
		return nil
	}
	d, err := a.st.DecideMAC(MACQuestion{Guest: ref.Guest, NIC: ref.NIC, MAC: mac, Port: port, Bridge: br, Rewrite: true})
	if err != nil || d.Action != RefuseNIC || d.Owner == nil {
		return nil
	}
	return a.byPort[d.Owner.Port]
}

// owning picks, of the running guests' NICs with a MAC, the one managed
// first: the one whose entry it is when the MAC is a duplicate.
func owning(refs []*nicRef) *nicRef {
	if i := slices.IndexFunc(refs, func(r *nicRef) bool { return r.Managed }); i >= 0 {
		return refs[i]
	}
	return refs[0]
}

// staticEntries returns the bridge's static entries on its ports (not on
// the bridge device itself).
func staticEntries(all []model.Entry, br *model.Link) []model.Entry {
	return slices.DeleteFunc(slices.Clone(all), func(e model.Entry) bool {
		return !e.Static() || e.PortIndex == br.Index
	})
}
