package manage

import (
	"fmt"
	"slices"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/events"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// AttachFollowed gives each guest of gs the MACs its record in d says its
// NICs follow (undeclared_macs = "follow"; guest.SetFollowed), replacing
// what an earlier call gave it: the start plans of the watcher and
// reconcile, status, and the stop hook then treat them like extra MACs,
// so a resync neither calls their entries stale nor loses them. It
// returns one error per record it could not read; that guest follows
// nothing until it can be.
func AttachFollowed(d runstate.Dir, gs []*guest.Guest) []error {
	var errs []error
	have, err := d.FollowedGuests()
	if err != nil {
		errs = append(errs, err)
	}
	for _, g := range gs {
		var f runstate.Followed
		if have[g.Name] || err != nil {
			var rerr error
			if f, _, rerr = d.GetFollowed(g.Name); rerr != nil {
				errs = append(errs, rerr)
			}
		}
		for _, n := range g.NICs {
			if n.BadMAC == nil {
				fn := f.NICs[n.MAC]
				g.SetFollowed(n.MAC, fn.MACs, fn.Full)
			}
		}
	}
	return errs
}

// newLife reports whether a hook's operation starts a new life of the
// guest (start, or a container's started), which follows nothing yet,
// rather than taking over a running one (reconnect, attach), which keeps
// what it follows.
func newLife(op string) bool { return op != "reconnect" && op != "attach" }

// followedForHook prepares the followed MACs of the guest of a hook's
// event: a new life clears its record (unless dry), anything else gives
// the guest what the record says, so that a reconnect keeps their entries
// and a stop removes them (clearFollowed, once it did).
func followedForHook(d runstate.Dir, ev Event) {
	if ev.Guest == nil {
		return
	}
	if ev.Act == events.Apply && newLife(ev.Op) {
		if !ev.Dry {
			if err := d.ClearFollowed(ev.Guest.Name); err != nil {
				ev.Log.Warn(err)
			}
		}
		return
	}
	for _, err := range AttachFollowed(d, []*guest.Guest{ev.Guest}) {
		ev.Log.Warn(fmt.Errorf("%w: its followed MACs are not cleaned", err))
	}
}

// clearFollowed removes the record of a guest whose stop cleaned up the
// entries of the MACs it followed: the next life starts with none.
func clearFollowed(d runstate.Dir, ev Event) {
	if err := d.ClearFollowed(ev.Guest.Name); err != nil {
		ev.Log.Warn(err)
	}
}

// FollowKind is what Follow did about one locked entry.
type FollowKind int

const (
	// Followed: the MAC is the NIC's now (recorded; its static entry,
	// written by the guest's plan, replaces the locked entry).
	Followed FollowKind = iota
	// Claimed: another guest's NIC or a static entry on another port of
	// the bridge has the MAC; it is not followed.
	Claimed
	// Overflow: the NIC already follows follow_max MACs; it follows no
	// more, and its port's MAB goes off until the guest stops.
	Overflow
)

// FollowOutcome is one thing Follow decided, for the log.
type FollowOutcome struct {
	Kind                   FollowKind
	NIC, Port, Bridge, MAC string
	// Count is how many MACs the NIC follows afterwards, Max its bridge's
	// follow_max.
	Count, Max int
	// Why says, for Claimed, who has the MAC.
	Why string
}

func (o FollowOutcome) String() string {
	switch o.Kind {
	case Claimed:
		return fmt.Sprintf("%s on %s sends from undeclared MAC %s, which is not followed: %s (undeclared_macs = \"follow\")", o.NIC, o.Port, o.MAC, o.Why)
	case Overflow:
		return fmt.Sprintf("%s on %s sends from more MACs than it may follow (%d, follow_max %d; the latest %s): MAC Authentication Bypass off on %s until the guest stops, its frames from further MACs are dropped unreported (undeclared_macs = \"follow\")",
			o.NIC, o.Port, o.Count, o.Max, o.MAC, o.Port)
	}
	return fmt.Sprintf("%s on %s: following MAC %s (%d of follow_max %d): a static entry authorises it (undeclared_macs = \"follow\")", o.NIC, o.Port, o.MAC, o.Count, o.Max)
}

// Follow decides, for each managed NIC of running guest g that follows
// its undeclared MACs (undeclared_macs = "follow") on a port with MAB,
// about each locked entry on the port (a MAC the guest sent from and the
// kernel dropped): followed, unless the MAC is claimed elsewhere on the
// bridge (DecideMAC: another guest has it, or a static entry on another
// port), or the NIC already follows its bridge's follow_max MACs, which
// makes it full. next is g's record afterwards; changed says it differs
// from what g had (attached by ReadState). g itself is not changed.
func (st *State) Follow(g *guest.Guest) (next runstate.Followed, out []FollowOutcome, changed bool, err error) {
	next = runstate.Followed{Guest: g.Name, NICs: map[string]runstate.FollowedNIC{}}
	for _, n := range g.NICs {
		md := g.Metadata(n)
		fn := runstate.FollowedNIC{MACs: slices.Clone(md.Followed), Full: md.FollowFull}
		port := st.Kernel.Device(n.Target)
		if n.Target != "" && n.BadMAC == nil && port != nil && port.Flags.Mab && !fn.Full && g.Manages(n) {
			var o []FollowOutcome
			if o, err = st.followNIC(g, n, port, &fn); err != nil {
				return next, out, changed, err
			}
			out = append(out, o...)
			changed = changed || len(fn.MACs) != len(md.Followed) || fn.Full != md.FollowFull
		}
		if len(fn.MACs) > 0 || fn.Full {
			next.NICs[n.MAC] = fn
		}
	}
	return next, out, changed, nil
}

// followNIC is Follow for one NIC on its port.
func (st *State) followNIC(g *guest.Guest, n guest.NIC, port *model.Link, fn *runstate.FollowedNIC) ([]FollowOutcome, error) {
	br := st.Kernel.DeviceByIndex(port.MasterIndex)
	if br == nil || plan.UndeclaredMACs(st.Config, g, n, br.Name) != config.Follow {
		return nil, nil
	}
	max := st.Config.Policy(br.Name).FollowMax
	entries, err := st.Kernel.PortEntries(br, port)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the FDB entries of %s: %w", n.Label(), port.Name, err)
	}
	declared := g.Metadata(n).MACs()
	var out []FollowOutcome
	for _, e := range entries {
		if !e.Locked() || e.PortIndex != port.Index || slices.Contains(declared, e.MAC) || slices.Contains(fn.MACs, e.MAC) {
			continue
		}
		o := FollowOutcome{Kind: Followed, NIC: n.Label(), Port: port.Name, Bridge: br.Name, MAC: e.MAC, Max: max}
		d, err := st.DecideMAC(MACQuestion{Guest: g.Name, NIC: n.Label(), MAC: e.MAC, Port: port, Bridge: br})
		if err != nil {
			return nil, err
		}
		switch {
		case d.Owner != nil || len(d.Others) > 0:
			o.Kind, o.Why = Claimed, claimedBy(d)
		case d.Roamed != nil:
			o.Kind, o.Why = Claimed, fmt.Sprintf("it has a static entry on %s of bridge %s", d.Roamed.Port, br.Name)
		case len(fn.MACs) >= max:
			o.Kind, fn.Full = Overflow, true
		default:
			fn.MACs = append(fn.MACs, e.MAC)
		}
		o.Count = len(fn.MACs)
		out = append(out, o)
		if fn.Full {
			break
		}
	}
	return out, nil
}

// claimedBy says who else has a MAC, from DecideMAC's answer.
func claimedBy(d MACDecision) string {
	if d.Owner != nil {
		return d.Owner.String() + " has it"
	}
	return d.Others[0].String() + " has it"
}
