package watch

import (
	"net"
	"slices"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/manage"
)

// watching is what a source that follows the guests' ports and MACs
// implements (the netlink source: its socket filter keeps what concerns
// them and drops the rest of a busy bridge's FDB churn).
type watching interface {
	Watch(*kernel.Watchlist)
}

// publish hands the sources that want it the running guests' ports and
// MACs, as of this batch's live XML and kernel snapshot. A source compares
// with what it has: an unchanged list costs it nothing.
func (w *Watcher) publish(snap *manage.Snapshot) {
	var to []watching
	for _, s := range w.Sources {
		if t, ok := s.(watching); ok {
			to = append(to, t)
		}
	}
	if len(to) == 0 {
		return
	}
	wl := watchlist(w.live.List(), snap)
	for _, t := range to {
		t.Watch(wl)
	}
}

// watchlist lists the guests' ports that are on a bridge, by index, and
// the MACs of all their NICs (extra MACs of the metadata included). It
// lists more than the managed ports (any bridge, opted-out NICs): the
// watcher only reads what these name, it decides from the live XML.
func watchlist(guests []*guest.Guest, snap *manage.Snapshot) *kernel.Watchlist {
	wl := &kernel.Watchlist{Ports: map[int]string{}, MACs: map[[6]byte][]string{}}
	addMAC := func(s, g string) {
		hw, err := net.ParseMAC(s)
		if err != nil || len(hw) != 6 {
			return
		}
		m := [6]byte(hw)
		for _, have := range wl.MACs[m] {
			if have == g {
				return
			}
		}
		wl.MACs[m] = append(wl.MACs[m], g)
	}
	for _, g := range guests {
		for _, n := range g.NICs {
			if l := snap.Device(n.Target); n.Target != "" && l != nil && l.MasterIndex != 0 {
				wl.Ports[l.Index] = g.Name
			}
			if n.BadMAC == nil {
				addMAC(n.MAC, g.Name)
			}
		}
		for _, i := range g.Interfaces {
			for _, m := range append(slices.Clone(i.ExtraMACs), i.Followed...) {
				addMAC(m, g.Name)
			}
		}
	}
	return wl
}
