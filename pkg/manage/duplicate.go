package manage

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// Claim is a running guest's NIC that has a MAC, its own or one declared
// as an extra MAC in the guest's metadata, on a port.
type Claim struct {
	Guest string
	NIC   string // alias, e.g. net0
	Port  string
	// Manages is false when the guest or the NIC opted out: such a NIC
	// sends from the MAC but never keeps its entry.
	Manages bool
}

func (c Claim) String() string { return fmt.Sprintf("guest %s (%s on %s)", c.Guest, c.NIC, c.Port) }

// MACAction is what is done about one MAC of a running guest's NIC.
type MACAction int

const (
	// WriteEntry: the MAC is the NIC's; its entry is written on the NIC's
	// port (missing, in place, or back from where another guest's frames
	// moved it).
	WriteEntry MACAction = iota
	// LeaveEntry: the entry roamed and stays where it is until the guest
	// starts or resumes here (Rewrite): to the uplink while the guest runs
	// (a frame from the guest's MAC came in there: a duplicate or a spoof
	// elsewhere on the network), or anywhere while the guest migrates away
	// (its announcement from the destination moved it).
	LeaveEntry
	// RefuseNIC: the MAC belongs to another running guest, or has a static
	// entry on another guest's tap; the NIC is not managed.
	RefuseNIC
)

// MACQuestion asks about one MAC of a running guest's NIC on its port.
type MACQuestion struct {
	Guest, NIC, MAC string
	Port, Bridge    *model.Link
	// Rewrite: the guest started or resumed here, so its entries go on its
	// own ports even where they roamed. OutgoingMigration: the guest is the
	// source of a live migration.
	Rewrite, OutgoingMigration bool
}

// MACDecision is the answer.
type MACDecision struct {
	Action MACAction
	// Owner is, for RefuseNIC, the NIC that keeps the MAC (nil when the
	// refusal is a static entry on a tap whose guest does not have it).
	Owner *Claim
	// Others are the other running guests' NICs with the MAC on the bridge.
	Others []Claim
	// Pin: the entry is written sticky, so that the frames of Others cannot
	// move it (only where the kernel has sticky entries).
	Pin bool
	// Roamed is the static entry for the MAC on another port of the
	// bridge, if there is one.
	Roamed *model.Entry
	// Why says the decision in words: the refusal's cause, or what the
	// entry's step or the log says.
	Why string
}

// DecideMAC decides whose a MAC is when it matters: when other running
// guests have it on the same bridge (a duplicate MAC), or when its static
// entry sits on another port. Status, reconcile and the watcher all ask
// it, so that they agree with each other and with the hook that refused
// the later guest at its start.
//
// Of the running guests whose NICs on the bridge have the MAC, and may be
// managed, one keeps it, the first of:
//   - the one whose port holds the MAC's static entry and does not learn:
//     fdbhook wrote the entry there;
//   - one whose port does not learn (it is managed): a static entry on a
//     port that learns may have been moved there by a frame;
//   - the one whose port is oldest (lowest interface index: created first).
//
// The others are refused and their ports left as they are; the keeper's
// entry is pinned (sticky), so that their frames cannot take it. An entry
// on another guest's port that learns (a duplicate's or a spoofer's frame
// moved it there) is written back at once; one on the uplink is left there
// while the guest runs, and any roam while the guest migrates away.
func (st *State) DecideMAC(q MACQuestion) (MACDecision, error) {
	var d MACDecision
	entries, err := st.Kernel.Entries(q.Bridge, q.MAC)
	if err != nil {
		return d, err
	}
	claims := st.claimsOn(q.MAC, q.Bridge)
	for _, c := range claims {
		if c.Port != q.Port.Name {
			d.Others = append(d.Others, c)
		}
	}
	if o := st.keeper(claims, entries); o != nil && o.Port != q.Port.Name {
		d.Action, d.Owner = RefuseNIC, o
		d.Why = fmt.Sprintf("%s has it on this bridge too and keeps it; this guest's port %s is left as it is", o, q.Port.Name)
		return d, nil
	}
	if len(d.Others) > 0 {
		d.Pin = q.Bridge.StickyCapable
		d.Why = pinWhy(d)
	}
	for _, e := range entries {
		if e.Static() && e.PortIndex != q.Port.Index && e.PortIndex != q.Bridge.Index {
			d.Roamed = &e
			break
		}
	}
	if d.Roamed == nil {
		return d, nil
	}
	st.decideRoam(q, &d)
	return d, nil
}

// decideRoam decides about the MAC's static entry on another port.
func (st *State) decideRoam(q MACQuestion, d *MACDecision) {
	port := st.Kernel.DeviceByIndex(d.Roamed.PortIndex)
	if port == nil {
		return
	}
	owner := st.portOwners()[port.Name]
	switch {
	case owner != "" && port.IsGuestPort() && port.Flags.Learns():
		d.Why = fmt.Sprintf("back from %s, the port of guest %s, which learned it from a frame", port.Name, owner)
		if len(d.Others) > 0 {
			d.Why += "; " + pinWhy(*d)
		}
	case port.IsTap():
		whose := "another guest's port"
		if owner != "" {
			whose = "the port of guest " + owner
		}
		d.Action = RefuseNIC
		d.Why = fmt.Sprintf("it already has a static entry on %s, %s (this guest's port is %s)", port.Name, whose, q.Port.Name)
	case q.Rewrite:
	case q.OutgoingMigration:
		d.Action = LeaveEntry
		d.Why = fmt.Sprintf("the static entry for %s moved from the guest's port %s to %s of bridge %s: the guest migrating away announced itself from the destination; its stop here removes the entry",
			q.MAC, q.Port.Name, port.Name, q.Bridge.Name)
	default:
		d.Action = LeaveEntry
		d.Why = fmt.Sprintf("the static entry for %s is on %s, not on the guest's port %s of bridge %s: a frame from the guest's MAC came in there (a duplicate or a spoof); left there while the guest runs ('sticky' pins entries)",
			q.MAC, port.Name, q.Port.Name, q.Bridge.Name)
	}
}

// pinWhy says why a decision pins the entry, or why it cannot.
func pinWhy(d MACDecision) string {
	if d.Pin {
		return fmt.Sprintf("pinned: %s has this MAC too", d.Others[0])
	}
	return fmt.Sprintf("%s has this MAC too; this kernel cannot pin the entry (no sticky entries, Linux 4.20+)", d.Others[0])
}

// keeper returns the claim that keeps a MAC among claims (DecideMAC), given
// the MAC's entries on the bridge; nil when none may be managed.
func (st *State) keeper(claims []Claim, entries []model.Entry) *Claim {
	type ranked struct {
		c             Claim
		holds, learns bool
		index         int
	}
	var rs []ranked
	for _, c := range claims {
		p := st.Kernel.Device(c.Port)
		if !c.Manages || p == nil {
			continue
		}
		holds := slices.ContainsFunc(entries, func(e model.Entry) bool { return e.Static() && e.PortIndex == p.Index })
		rs = append(rs, ranked{c: c, holds: holds, learns: p.Flags.Learns(), index: p.Index})
	}
	if len(rs) == 0 {
		return nil
	}
	first := slices.MinFunc(rs, func(a, b ranked) int {
		return cmp.Or(-cmp.Compare(rank(a.holds && !a.learns), rank(b.holds && !b.learns)),
			-cmp.Compare(rank(!a.learns), rank(!b.learns)), cmp.Compare(a.index, b.index))
	})
	return &first.c
}

func rank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// claimsOn returns the running guests' NICs that have mac on a port the
// kernel has on bridge br.
func (st *State) claimsOn(mac string, br *model.Link) []Claim {
	if st.claims == nil {
		st.claims = map[string][]Claim{}
		for _, g := range st.Running {
			for _, n := range g.NICs {
				if n.Target == "" || n.BadMAC != nil {
					continue
				}
				c := Claim{Guest: g.Name, NIC: n.Label(), Port: n.Target, Manages: g.Manage && g.Manages(n)}
				for _, m := range g.Metadata(n).MACs() {
					st.claims[m] = append(st.claims[m], c)
				}
			}
		}
	}
	var out []Claim
	for _, c := range st.claims[mac] {
		if p := st.Kernel.Device(c.Port); p != nil && p.MasterIndex == br.Index {
			out = append(out, c)
		}
	}
	return out
}
