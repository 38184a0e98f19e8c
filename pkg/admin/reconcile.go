package admin

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// Result is what reconcile did or, in a dry run, would do.
type Result struct {
	DryRun  bool
	Entries []EntryResult
	Guests  []GuestResult
	// Failed counts the guests that could not be managed.
	Failed int
}

// EntryResult is one stale entry (or port) cleaned up, or an entry left
// alone because it is not fdbhook's to judge.
type EntryResult struct {
	Bridge string
	Step   plan.Step
	// Action is "deleted", "restored" (port flags), "left alone" or
	// "failed"; in a dry run "would delete" or "would restore".
	Action string
	Why    string
	Err    error
}

// GuestResult is what happened to one running guest.
type GuestResult struct {
	Guest string
	// Managed lists the guest's managed NICs ("net0 on vnet3").
	Managed []string
	// Changes are the steps that changed (or would change) the kernel.
	Changes []plan.Step
	// Err is set when the guest failed: nothing of its plan is applied.
	Err      error
	Warnings []string
	// Incoming: the guest is paused as the destination of a live
	// migration and was left alone (its entries are due at the resume).
	Incoming bool
}

// Reconcile brings the kernel to what fdbhook's hooks would have made of
// the running guests: first stale static entries on managed bridges are
// deleted (entries on taps no running guest owns, and entries on uplinks
// for the MACs of defined guests that are not running), then every running
// guest gets exactly what a "start begin" applies, all or nothing per
// guest. Entries it cannot attribute are reported, never deleted. With dry
// set it changes nothing and reports what it would do. The caller holds
// the run lock.
func Reconcile(st *State, w model.ReadWriter, dry bool) (*Result, error) {
	res, err := CleanStale(st, w, dry)
	if err != nil {
		return nil, err
	}
	for _, g := range st.Running {
		if st.Incoming[g.Name] {
			// Entries now would steer this host's traffic into a paused
			// tap while the guest still runs on the source.
			res.Guests = append(res.Guests, GuestResult{Guest: g.Name, Incoming: true})
			continue
		}
		gr := ReconcileGuest(st, w, g, dry, nil)
		if gr.Err != nil {
			res.Failed++
		}
		res.Guests = append(res.Guests, gr)
	}
	return res, nil
}

// CleanStale is the first half of Reconcile: it deletes the stale static
// entries on managed bridges and gives the taps they were on learning and
// flooding back. The result lists the entries only.
func CleanStale(st *State, w model.Writer, dry bool) (*Result, error) {
	res := &Result{DryRun: dry}
	a := analyze(st)
	bridges, _ := st.bridges()
	names := make([]string, 0, len(bridges))
	for _, b := range bridges {
		names = append(names, b.name)
	}
	for _, gp := range a.plans {
		if gp.err != nil {
			continue
		}
		for _, s := range gp.p.Steps {
			if s.Kind == plan.AddEntry && !slices.Contains(names, s.Bridge) {
				names = append(names, s.Bridge)
			}
		}
	}
	for _, name := range names {
		br := st.Kernel.Device(name)
		if br == nil || br.Type != "bridge" {
			continue
		}
		if err := res.cleanBridge(a, br, w); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// ReconcileGuest gives one running guest exactly what a "start begin"
// applies, all or nothing: it plans from st, applies (unless dry) through
// w and mirrors what it did into st.Kernel, so later guests of the same
// run see it. adjust, when not nil, may replace the plan between planning
// and applying, seeing what it was planned from (the watcher drops entries
// it must not write yet, and plans an incoming migration's ports); it is
// not called for a refused plan. The caller holds the run lock.
func ReconcileGuest(st *State, w model.ReadWriter, g *guest.Guest, dry bool, adjust func(*plan.Plan, plan.View) (*plan.Plan, error)) GuestResult {
	gr := GuestResult{Guest: g.Name}
	p, err := st.startPlan(g, st.view())
	if err != nil {
		gr.Err = err
		return gr
	}
	if err := p.Refused(); err != nil {
		gr.Err = fmt.Errorf("%w (nothing applied)", err)
		return gr
	}
	if adjust != nil {
		if p, err = adjust(p, st.view()); err != nil {
			gr.Err = fmt.Errorf("%w (nothing applied)", err)
			return gr
		}
	}
	gr.Warnings = p.Warnings
	for _, s := range p.Steps {
		if on := s.NIC + " on " + s.Port; s.Kind == plan.AddEntry && !slices.Contains(gr.Managed, on) {
			gr.Managed = append(gr.Managed, on)
		}
		if changes(st.Kernel, s) {
			gr.Changes = append(gr.Changes, s)
		}
	}
	if !dry {
		if err := apply.Apply(w, p.Steps); err != nil {
			gr.Err, gr.Changes = err, nil
			var se *apply.StepError
			if !errors.As(err, &se) || se.UndoErr != nil {
				for _, s := range p.Steps {
					st.Kernel.Forget(s.BridgeIndex)
				}
			}
			return gr
		}
	}
	for _, s := range p.Steps {
		st.Kernel.Record(s)
	}
	return gr
}

// changes reports whether step s would change the kernel as the snapshot
// has it (an AddEntry for an entry that is already there changes nothing).
func changes(k *Snapshot, s plan.Step) bool {
	if s.Kind != plan.AddEntry {
		return true
	}
	br := k.DeviceByIndex(s.BridgeIndex)
	if br == nil {
		return true
	}
	entries, err := k.Entries(br, s.MAC)
	if err != nil {
		return true
	}
	return !slices.ContainsFunc(entries, func(e model.Entry) bool {
		return e.PortIndex == s.PortIndex && e.Static() && e.Vlan == 0
	})
}

// cleanBridge deletes the bridge's stale static entries and gives the taps
// they were on (which no running guest owns) learning and flooding back
// once no static entry is left on them, as a guest's stop does.
func (res *Result) cleanBridge(a *analysis, br *model.Link, w model.Writer) error {
	all, err := a.st.Kernel.BridgeEntries(br)
	if err != nil {
		return err
	}
	var cleaned []*model.Link
	for _, e := range staticEntries(all, br) {
		state, _, why := a.classify(e)
		step := plan.Step{Kind: plan.DelEntry, MAC: e.MAC, Port: e.Port, PortIndex: e.PortIndex,
			Bridge: br.Name, BridgeIndex: br.Index, Entry: e, Why: why}
		switch state {
		case EntryUnknown:
			res.Entries = append(res.Entries, EntryResult{Bridge: br.Name, Step: step, Action: "left alone", Why: why})
			continue
		case EntryStale:
		default:
			continue
		}
		r := res.do(w, a.st.Kernel, step, "deleted", "would delete")
		r.Why = why
		res.Entries = append(res.Entries, r)
		if port := a.st.Kernel.DeviceByIndex(e.PortIndex); r.Err == nil && port != nil && port.IsTap() && !slices.Contains(cleaned, port) {
			cleaned = append(cleaned, port)
		}
	}
	defaults := model.Flags{Learning: true, Flood: true}
	for _, port := range cleaned {
		left, err := a.st.Kernel.PortEntries(br, port)
		if err != nil {
			return err
		}
		// A port that learns and floods is left as it is, locked or not:
		// fdbhook never locks a port without turning both off.
		if learnFlood(port.Flags) == defaults || slices.ContainsFunc(left, model.Entry.Static) {
			continue
		}
		step := plan.Step{Kind: plan.SetFlags, NIC: "port " + port.Name, Port: port.Name, PortIndex: port.Index,
			Bridge: br.Name, BridgeIndex: br.Index, Flags: defaults, Prior: port.Flags, WithLocked: port.LockCapable}
		r := res.do(w, a.st.Kernel, step, "restored", "would restore")
		r.Why = "no running guest owns " + port.Name
		res.Entries = append(res.Entries, r)
	}
	return nil
}

// do carries out one clean-up step (unless dry) and mirrors it into the
// snapshot.
func (res *Result) do(w model.Writer, k *Snapshot, step plan.Step, done, would string) EntryResult {
	r := EntryResult{Bridge: step.Bridge, Step: step, Action: would}
	if !res.DryRun {
		r.Action = done
		if err := apply.Cleanup(w, []plan.Step{step}); err != nil {
			r.Action, r.Err = "failed", err
			k.Forget(step.BridgeIndex)
			return r
		}
	}
	k.Record(step)
	return r
}

// Format writes one line per entry and guest, and a summary.
func (res *Result) Format(w io.Writer) {
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
