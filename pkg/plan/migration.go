package plan

import (
	"fmt"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// Incoming turns the start plan of a guest arriving by live migration into
// what its "start begin" on the destination does. libvirt runs that hook
// while the guest still runs on the source, and the guest's CPUs start here
// only at the resume, a second or more later (much longer for a large
// guest). A static entry written now would steer this host's traffic for
// the guest into a paused tap for that whole time, and a frame the guest
// sends on the source, arriving here through the uplink, would move the
// entry there for good once the tap no longer learns.
//
// So the ports get flooding off, learning on and no entries. A paused
// guest sends nothing, so its tap learns nothing before the resume; at the
// resume the guest's announcement moves its MAC onto the new tap at once,
// and this host reaches it. A running watcher then writes the full start
// plan (entries, learning off) when libvirt reports the resume; without
// one, or if the watcher that ran at "start begin" is gone by the resume,
// the guest is still reachable and the port stays so until the watcher's
// resync or "fdbhook reconcile". Learning off here would leave the guest
// unreachable from this host whenever the resume is not seen. Policy steps
// (vlan_filtering, the port's VLANs) stay: they are the port's
// configuration, not the guest's whereabouts. No port is newly locked: a
// locked port without the guest's entry would drop the guest's frames.
//
// v is what start was planned from: the port's flags as they are now.
func Incoming(start *Plan, v View, watcher bool) (*Plan, error) {
	p := &Plan{Guest: start.Guest, Skips: start.Skips, Refusals: start.Refusals,
		Notes: start.Notes, Warnings: start.Warnings}
	type port struct {
		step  Step // the port's first AddEntry
		prior model.Flags
	}
	var ports []port
	seen := map[int]bool{}
	for _, s := range start.Steps {
		switch s.Kind {
		case EnableVlanFiltering, SetVlans:
			p.Steps = append(p.Steps, s)
		case AddEntry:
			if seen[s.PortIndex] {
				continue
			}
			seen[s.PortIndex] = true
			l, err := v.LinkByIndex(s.PortIndex)
			if err != nil {
				return nil, fmt.Errorf("%s: looking up %s: %w", s.NIC, s.Port, err)
			}
			if l == nil {
				return nil, fmt.Errorf("%s: port %s is gone", s.NIC, s.Port)
			}
			ports = append(ports, port{step: s, prior: l.Flags})
		}
	}
	for _, pt := range ports {
		want := model.Flags{Learning: true, Locked: pt.prior.Locked, Mab: pt.prior.Mab && pt.prior.Locked}
		if want == pt.prior {
			continue
		}
		set := pt.step
		set.Kind, set.Flags, set.Prior, set.PriorEntries, set.Sticky, set.Why = SetFlags, want, pt.prior, nil, false, ""
		p.Steps = append(p.Steps, set)
	}
	if len(ports) > 0 {
		if watcher {
			p.Notes = append(p.Notes, fmt.Sprintf("incoming live migration: %d port(s) get flooding off, learning on (the guest's announcement at the resume is learned here) and no static entries yet; the running watcher writes them when the guest resumes here", len(ports)))
		} else {
			p.Notes = append(p.Notes, fmt.Sprintf("incoming live migration: %d port(s) get flooding off and learning on, so the guest's announcement at the resume is learned here; no watcher runs: the static entries wait for 'fdbhook reconcile' or a watcher", len(ports)))
		}
	}
	return p, nil
}
