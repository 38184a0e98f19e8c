package admin

import (
	"fmt"
	"io"
	"strings"

	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// FormatResult writes what a reconcile did (or, in a dry run, would do):
// one line per entry and guest, and a summary.
func FormatResult(w io.Writer, res *manage.Result) {
	if res.DryRun {
		fmt.Fprintln(w, "dry run: nothing is changed")
	}
	for _, e := range res.Entries {
		what := "stale " + e.Step.Entry.String()
		if e.Step.Kind == plan.SetFlags {
			what = e.Step.Flags.String() + " for " + e.Step.Port
		} else if e.Action == "left alone" {
			what = "static " + e.Step.Entry.String()
		}
		line := fmt.Sprintf("bridge %s: %s %s: %s", e.Bridge, e.Action, what, e.Why)
		if e.Err != nil {
			line += ": " + e.Err.Error()
		}
		fmt.Fprintln(w, line)
	}
	ok := 0
	for _, g := range res.Guests {
		if g.Err != nil {
			fmt.Fprintf(w, "guest %s: failed: %v\n", g.Guest, g.Err)
			continue
		}
		ok++
		if g.Incoming {
			fmt.Fprintf(w, "guest %s: left alone: paused for an incoming live migration; its entries are due when it resumes here\n", g.Guest)
			continue
		}
		if len(g.Managed) == 0 {
			fmt.Fprintf(w, "guest %s: nothing to manage\n", g.Guest)
			continue
		}
		line := fmt.Sprintf("guest %s: ok: %s", g.Guest, strings.Join(g.Managed, ", "))
		switch {
		case len(g.Changes) == 0:
			line += "; already managed"
		case res.DryRun:
			line += "; would change:"
		default:
			line += "; changed:"
		}
		fmt.Fprintln(w, line)
		for _, s := range g.Changes {
			fmt.Fprintf(w, "  %s\n", s)
		}
		for _, warn := range g.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", warn)
		}
	}
	fmt.Fprintf(w, "%d running guests: %d ok, %d failed\n", len(res.Guests), ok, res.Failed)
}
