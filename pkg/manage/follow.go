package manage

import (
	"fmt"

	"github.com/fdbhook/fdbhook/pkg/events"
	"github.com/fdbhook/fdbhook/pkg/guest"
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
	for _, g := range gs {
		f, _, err := d.GetFollowed(g.Name)
		if err != nil {
			errs = append(errs, err)
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
