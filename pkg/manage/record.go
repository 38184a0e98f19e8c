package manage

import (
	"fmt"
	"time"

	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// markOrphanAge is how old the mark of a guest that is not running here
// must be before reconcile removes it: younger, its migration may be
// between "migrate begin" and libvirt's first live XML of the guest.
const markOrphanAge = 10 * time.Second

// SettleMarks removes, after a reconcile that was not a dry run, the
// migration marks in d it made pointless: those of guests it just gave
// their full start plan (an incoming migration that finished while no
// watcher ran), and those of guests not running here at all, more than
// 10 s old at now (libvirt refused the migration after "migrate begin",
// before any guest existed to stop). It returns one line per mark it
// removed, and what went wrong.
func SettleMarks(d runstate.Dir, st *State, res *Result, now time.Time) (removed []string, errs []error) {
	marks, err := d.Marks()
	if err != nil {
		return nil, []error{err}
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
		case !running[m.Guest] && now.Sub(m.Since) > markOrphanAge:
			why = "the guest is not running here (a migration refused before it started)"
		default:
			continue
		}
		if err := d.ClearMark(m.Guest); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, fmt.Sprintf("guest %s: removed its migration mark (%s): %s", m.Guest, m.Phase, why))
	}
	return removed, errs
}

// RecordReconcile writes the outcome of a reconcile that was not a dry run
// (res, or err when it could not run) to d, at now, where the metrics read
// the last one. Nothing is recorded without a run directory.
func RecordReconcile(d runstate.Dir, res *Result, err error, now time.Time) error {
	if d == "" {
		return nil
	}
	rec := runstate.Reconcile{Time: now}
	if res != nil {
		rec.Guests, rec.Failed = len(res.Guests), res.Failed
	}
	if err != nil {
		rec.Err = err.Error()
	}
	return d.PutReconcile(rec)
}
