package admin

import "github.com/fdbhook/fdbhook/pkg/guest"

// IncomingGuests returns the guests of running (their live XML) that are
// paused as the destination of a live migration: their ports wait for the
// resume.
func IncomingGuests(running []*guest.Guest) map[string]bool {
	out := map[string]bool{}
	for _, g := range running {
		if g.IncomingMigration {
			out[g.Name] = true
		}
	}
	return out
}
