package manage

import (
	"fmt"
	"time"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// Arrival is what a live migration to this host asks of a guest's ports.
type Arrival int

const (
	// NotArriving: no live migration to this host concerns the guest; its
	// ports get its full start plan.
	NotArriving Arrival = iota
	// Arriving: the guest is, or is about to be, paused here as a live
	// migration's destination while it still runs on the source; its
	// ports get plan.Incoming (flooding off, learning on, no entries) and
	// its entries wait for the resume.
	Arriving
	// Arrived: the migration finished here (the guest runs); its ports
	// get the full start plan, entries written back on its own taps.
	Arrived
)

func (a Arrival) String() string {
	switch a {
	case Arriving:
		return "arriving"
	case Arrived:
		return "arrived"
	}
	return "not arriving"
}

// Migration is the migration decision: a pure function of the guest's
// migration mark (nil: none), its XML and the time. g is either the
// domain XML libvirt hands a hook (a plain <domain>, State empty: the
// guest is about to start) or a running guest's live XML (<domstatus>).
//
//   - At a start, the guest is arriving when "migrate begin" marked it
//     (phase incoming) no more than 10 minutes ago (runstate.MaxPrepare)
//     and the mark names the same guest (UUID).
//   - A running guest's live XML decides with the mark: paused here with a
//     mark of any phase, or without one while the live XML says it is a
//     migration's destination, it is arriving; running with a mark, it
//     has arrived.
//
// Any other mark is stale: clearMark says when a mark is to be removed
// (stale, or the migration is over here), and why says so in words.
func Migration(m *runstate.Mark, g *guest.Guest, now time.Time) (a Arrival, clearMark bool, why string) {
	if m != nil && m.UUID != "" && g.UUID != "" && m.UUID != g.UUID {
		a, _, why = Migration(nil, g, now)
		return a, true, fmt.Sprintf("a stale migration mark (of another guest %s, %s)", m.Guest, m.UUID)
	}
	switch {
	case g.State == "" && m == nil:
		return NotArriving, false, ""
	case g.State == "":
		if m.Phase == runstate.Incoming && m.Fresh(now) {
			return Arriving, false, fmt.Sprintf("incoming live migration (marked %s)", m.Since.Format(time.RFC3339))
		}
		return NotArriving, true, fmt.Sprintf("a stale migration mark (%s since %s)", m.Phase, m.Since.Format(time.RFC3339))
	case g.State == "running" && m != nil:
		return Arrived, true, "incoming live migration finished: the guest runs here"
	case g.State == "running":
		return NotArriving, false, ""
	case m != nil:
		return Arriving, false, fmt.Sprintf("incoming live migration (%s since %s): entries are written when it resumes here",
			m.Phase, m.Since.Format(time.RFC3339))
	case g.IncomingMigration:
		return Arriving, false, "paused for an incoming live migration (libvirt's live XML): its entries are due when it resumes here"
	}
	return NotArriving, false, ""
}

// ReadMark reads guest name's migration mark in d; nil when it has none.
func ReadMark(d runstate.Dir, name string) (*runstate.Mark, error) {
	m, ok, err := d.GetMark(name)
	if err != nil || !ok {
		return nil, err
	}
	return &m, nil
}

// Arrivals decides (Migration) for each running guest of live whether it
// is arriving by live migration, with its mark in d, at now: the guests
// whose ports wait for their resume here. A mark that cannot be read
// counts as none.
func Arrivals(running []*guest.Guest, d runstate.Dir, now time.Time) map[string]bool {
	out := map[string]bool{}
	for _, g := range running {
		mark, _ := ReadMark(d, g.Name)
		if a, _, _ := Migration(mark, g, now); a == Arriving {
			out[g.Name] = true
		}
	}
	return out
}
