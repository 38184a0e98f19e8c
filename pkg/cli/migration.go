package cli

import (
	"fmt"
	"time"

	"github.com/fdbhook/fdbhook/pkg/manage"
)

// markOrphanAge is how old the mark of a guest that is not running here
// must be before reconcile removes it: younger, its migration may be
// between "migrate begin" and libvirt's first live XML of the guest.
const markOrphanAge = 10 * time.Second

// settleMarks clears, after a reconcile, the migration marks it made
// pointless: those of guests it just gave their full start plan (an
// incoming migration that finished while no watcher ran), and those of
// guests not running here at all (libvirt refused the migration after
// "migrate begin", before any guest existed to stop).
func settleMarks(e *Env, st *manage.State, res *manage.Result) {
	d := e.RunDir
	marks, err := d.Marks()
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.Program, err)
		return
	}
	running := map[string]bool{}
	for _, g := range st.Running {
		running[g.Name] = true
	}
	done := map[string]bool{}
	for _, g := range res.Guests {
		done[g.Guest] = g.Err == nil && !g.Incoming
	}
	for _, m := range marks {
		why := ""
		switch {
		case done[m.Guest]:
			why = "the guest runs here and has its entries"
		case !running[m.Guest] && e.Clock().Sub(m.Since) > markOrphanAge:
			why = "the guest is not running here (a migration refused before it started)"
		default:
			continue
		}
		if err := d.ClearMark(m.Guest); err != nil {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.Program, err)
			continue
		}
		fmt.Fprintf(e.Stdout, "guest %s: removed its migration mark (%s): %s\n", m.Guest, m.Phase, why)
	}
}
