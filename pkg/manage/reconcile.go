package manage

import (
	"errors"
	"fmt"
	"slices"

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
	a, err := Analyze(st)
	if err != nil {
		return nil, err
	}
	bridges, _ := a.Bridges()
	names := make([]string, 0, len(bridges))
	for _, b := range bridges {
		names = append(names, b.Name)
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
		if changes(s) {
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

// changes reports whether step s would change the kernel: an entry
// already in place (InPlace) does not.
func changes(s plan.Step) bool { return s.Kind != plan.AddEntry || !InPlace(s) }

// cleanBridge deletes the bridge's stale static entries and gives the taps
// they were on (which no running guest owns) learning and flooding back
// once no static entry is left on them, as a guest's stop does.
func (res *Result) cleanBridge(a *Analysis, br *model.Link, w model.Writer) error {
	all, err := a.staleCandidates(br)
	if err != nil {
		return err
	}
	var cleaned []*model.Link
	for _, e := range StaticEntries(all, br) {
		state, _, why := a.Classify(e)
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
		r := res.do(w, a.State.Kernel, step, "deleted", "would delete")
		r.Why = why
		res.Entries = append(res.Entries, r)
		if port := a.State.Kernel.DeviceByIndex(e.PortIndex); r.Err == nil && port != nil && port.IsTap() && !slices.Contains(cleaned, port) {
			cleaned = append(cleaned, port)
		}
	}
	defaults := model.Flags{Learning: true, Flood: true}
	for _, port := range cleaned {
		left, err := a.State.Kernel.PortEntries(br, port)
		if err != nil {
			return err
		}
		// A port that learns and floods is left as it is, locked or not:
		// fdbhook never locks a port without turning flooding off. MAB goes
		// off with the rest (a report-mode port had it).
		if port.Flags.LearnFlood() == defaults || slices.ContainsFunc(left, model.Entry.Static) {
			continue
		}
		step := plan.Step{Kind: plan.SetFlags, NIC: "port " + port.Name, Port: port.Name, PortIndex: port.Index,
			Bridge: br.Name, BridgeIndex: br.Index, Flags: defaults, Prior: port.Flags, WithLocked: port.LockCapable, WithMab: port.MabCapable}
		r := res.do(w, a.State.Kernel, step, "restored", "would restore")
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

// Roam is an entry left where it roamed, and why (DecideMAC).
type Roam struct {
	Step     plan.Step
	Decision MACDecision
}

// KeepRoams drops from g's start plan p the entry steps already in place
// (InPlace), and those whose entries stay where they roamed (DecideMAC:
// only a start or resume, rewrite, writes them back, except from another
// guest's port that learned them); it returns the latter. What the watcher
// gives a running guest whose hints say something changed.
func (st *State) KeepRoams(g *guest.Guest, p *plan.Plan, rewrite bool) (roamed []Roam, err error) {
	p.Steps = slices.DeleteFunc(p.Steps, func(s plan.Step) bool {
		if s.Kind != plan.AddEntry || err != nil {
			return false
		}
		if InPlace(s) {
			// Rewriting an entry that is already right changes
			// nothing: a resync of an idle host writes nothing.
			return true
		}
		var d MACDecision
		d, err = st.DecideMAC(MACQuestion{Guest: g.Name, NIC: s.NIC, MAC: s.MAC,
			Port: st.Kernel.DeviceByIndex(s.PortIndex), Bridge: st.Kernel.DeviceByIndex(s.BridgeIndex),
			Rewrite: rewrite, OutgoingMigration: g.OutgoingMigration})
		if err != nil || d.Action != LeaveEntry {
			return false
		}
		roamed = append(roamed, Roam{Step: s, Decision: d})
		return true
	})
	return roamed, err
}

// InPlace reports whether an AddEntry step's entry is already exactly what
// it writes: static, on the step's port, sticky as asked, not learned by a
// controller (extern_learn), and the MAC on no other port of the bridge.
// Rewriting such an entry changes nothing.
func InPlace(s plan.Step) bool {
	found := false
	for _, e := range s.PriorEntries {
		switch {
		case e.Local():
		case e.PortIndex != s.PortIndex || !e.Static() || e.NTFlags&model.NTFExtLearn != 0:
			return false
		case e.Vlan == 0:
			found = (e.NTFlags&model.NTFSticky != 0) == s.Sticky
		}
	}
	return found
}
