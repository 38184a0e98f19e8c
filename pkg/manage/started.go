package manage

import "github.com/fdbhook/fdbhook/pkg/guest"

// Sighting is what a running guest's live XML said when it was read.
type Sighting struct {
	State, Reason string
	Pid           int
}

// Sight is what g's live XML says now.
func Sight(g *guest.Guest) Sighting { return Sighting{State: g.State, Reason: g.Reason, Pid: g.Pid} }

// Started is the decision "did this guest start or resume here since it
// was last seen?", a pure function of what its live XML said then (prev;
// nil: it was not running) and says now (g): it runs now, and it did not
// then, or its process (another start) or its state's reason (paused and
// resumed in between) changed. Such a guest's entries are written back on
// its own ports, also where they roamed while it was not running here;
// while it keeps running, a roam means another port sent its MAC, and the
// entry is left where it went.
func Started(prev *Sighting, g *guest.Guest) bool {
	if g.State != "running" {
		return false
	}
	return prev == nil || prev.State != "running" || prev.Pid != g.Pid || prev.Reason != g.Reason
}
