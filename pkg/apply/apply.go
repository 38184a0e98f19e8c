package apply

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// StepError is a failed step. Its message has the form the hook prints:
// "<mac> on <bridge>: <what>: <cause>".
type StepError struct {
	Step plan.Step
	Err  error
	// UndoErr is set when undoing the earlier steps failed too.
	UndoErr error
}

func (e *StepError) Error() string {
	s := e.Step.Doing() + ": " + e.Err.Error()
	if e.UndoErr != nil {
		s += " (and undoing the earlier steps failed: " + e.UndoErr.Error() + ")"
	}
	return s
}

func (e *StepError) Unwrap() error { return e.Err }

// Apply carries out steps in order; on the first failure it undoes the
// steps already done and returns a *StepError. It reads the kernel only for
// what an undo needs and the plan could not know: a port's VLANs just
// before a SetVlans step replaces them.
func Apply(w model.ReadWriter, steps []plan.Step) error {
	steps = slices.Clone(steps)
	for i := 0; i < len(steps); i++ {
		if n := oneMessageRun(steps[i:]); n > 1 {
			if err := applyRun(w, steps, i, n); err != nil {
				return err
			}
			i += n - 1
			continue
		}
		if steps[i].Kind == plan.SetVlans {
			prior, err := portVlans(w, steps[i].PortIndex)
			if err != nil {
				return &StepError{Step: steps[i], Err: err, UndoErr: Undo(w, steps[:i])}
			}
			steps[i].PriorVlans = prior
		}
		if err := do(w, steps[i]); err != nil {
			return &StepError{Step: steps[i], Err: err, UndoErr: Undo(w, steps[:i])}
		}
	}
	return nil
}

// oneMessageRun is how many steps from the first are each carried out by
// exactly one write (an entry, a port's flags), and so can be pipelined.
func oneMessageRun(steps []plan.Step) int {
	for n, s := range steps {
		switch {
		case s.Kind == plan.SetFlags || s.Kind == plan.ExtendEntry || s.Kind == plan.DelEntry:
		case s.Kind == plan.AddEntry && !slices.ContainsFunc(s.PriorEntries, externLearned):
		default:
			return n
		}
	}
	return len(steps)
}

func externLearned(e model.Entry) bool { return e.NTFlags&model.NTFExtLearn != 0 }

// applyRun carries out steps[i:i+n], one-message steps, pipelined. The
// kernel acts on every write it is sent, also on those after one that
// fails: when one fails, every write of the run that the kernel did (or,
// unanswered in time, may have done: the first failure included) is
// undone with the steps before the run, and the error is the first failed
// step's, as when the steps go one by one. Undoing a write that was not
// done changes nothing: its entry is gone already, its flags as they were.
func applyRun(w model.Writer, steps []plan.Step, i, n int) error {
	run := steps[i : i+n]
	// A write that fails before it is queued (a Writer wrapping the
	// connection may refuse one) returns its error at once and has no
	// answer in the Pipeline's.
	now := make([]error, 0, n)
	answers := w.Pipeline(func() {
		for _, s := range run {
			now = append(now, do(w, s))
		}
	})
	errs := make([]error, n)
	for j := range run {
		switch {
		case now[j] != nil:
			errs[j] = now[j]
		case len(answers) > 0:
			errs[j], answers = answers[0], answers[1:]
		default:
			errs[j] = errors.New("the kernel connection did not answer this write")
		}
	}
	k := slices.IndexFunc(errs, func(err error) bool { return err != nil })
	if k < 0 {
		return nil
	}
	done := slices.Clone(steps[:i])
	for j, s := range run {
		if errs[j] == nil || mayBeDone(errs[j]) {
			done = append(done, s)
		}
	}
	return &StepError{Step: run[k], Err: errs[k], UndoErr: Undo(w, done)}
}

// mayBeDone reports whether a write that failed with err may have been
// carried out all the same: the kernel did not answer it in time.
func mayBeDone(err error) bool { return errors.Is(err, unix.EAGAIN) }

func portVlans(r model.Reader, port int) ([]model.Vlan, error) {
	v, err := r.PortVlans(port)
	if err != nil {
		return nil, fmt.Errorf("reading the port's VLANs: %w", err)
	}
	return v, nil
}

// setPortVlans makes want the port's exact VLAN set, from have, what it has:
// the VLANs of want are added (or their flags updated) first, then the
// others deleted, so the port is never without its new pvid.
func setPortVlans(w model.Writer, port int, want, have []model.Vlan) error {
	if len(want) > 0 {
		if err := w.AddPortVlans(port, want); err != nil {
			return fmt.Errorf("adding VLANs: %w", err)
		}
	}
	if del := vlansNotIn(have, want); len(del) > 0 {
		if err := w.DelPortVlans(port, del); err != nil {
			// Take the add back: the step fails as a whole.
			var undo []error
			if len(have) > 0 {
				undo = append(undo, w.AddPortVlans(port, have))
			}
			if added := vlansNotIn(want, have); len(added) > 0 {
				undo = append(undo, w.DelPortVlans(port, added))
			}
			return errors.Join(fmt.Errorf("deleting VLANs: %w", err), errors.Join(undo...))
		}
	}
	return nil
}

// vlansNotIn returns the VLANs of a whose ID is not in b.
func vlansNotIn(a, b []model.Vlan) []model.Vlan {
	var out []model.Vlan
	for _, v := range a {
		if !slices.ContainsFunc(b, func(x model.Vlan) bool { return x.ID == v.ID }) {
			out = append(out, v)
		}
	}
	return out
}

// changeVlans carries out a DelVlans or AddVlans step.
func changeVlans(w model.Writer, s plan.Step) error {
	if s.Kind == plan.AddVlans {
		return w.AddPortVlans(s.PortIndex, s.Vlans)
	}
	return w.DelPortVlans(s.PortIndex, s.Vlans)
}

func do(w model.Writer, s plan.Step) error {
	switch s.Kind {
	case plan.EnableVlanFiltering:
		return w.SetVlanFiltering(s.BridgeIndex, true)
	case plan.AddEntry:
		// A replace keeps an entry's extern_learn flag, and an entry so
		// flagged belongs to the controller that learned it (it deletes
		// it when it withdraws the route): delete it first.
		var deleted []model.Entry
		for _, p := range s.PriorEntries {
			if externLearned(p) {
				if err := w.DeleteEntry(p); err != nil && !gone(err) {
					return errors.Join(fmt.Errorf("deleting the extern_learn entry on %s: %w", p.Port, err), restore(w, deleted))
				}
				deleted = append(deleted, p)
			}
		}
		e := model.Entry{MAC: s.MAC, Port: s.Port, PortIndex: s.PortIndex, State: model.NUDNoARP, NTFlags: model.NTFMaster}
		if s.Sticky {
			e.NTFlags |= model.NTFSticky
		}
		if err := w.ReplaceEntry(e); err != nil {
			return errors.Join(err, restore(w, deleted))
		}
		return nil
	case plan.SetVlans:
		return setPortVlans(w, s.PortIndex, s.Vlans, s.PriorVlans)
	case plan.DelVlans, plan.AddVlans:
		return changeVlans(w, s)
	case plan.SetFlags:
		return w.SetPortFlags(s.PortIndex, s.Flags, s.WithLocked, s.WithMab)
	case plan.ExtendEntry:
		return w.ReplaceEntry(s.Entry)
	case plan.DelEntry:
		return w.DeleteEntry(s.Entry)
	}
	return fmt.Errorf("unknown step kind %d", s.Kind)
}

// Undo reverts done steps, last first, and returns every failure joined.
// Turning vlan_filtering on is not reverted: it is the bridge's configured
// policy, not part of one guest's state, and other guests rely on it. Nor
// are the ExtendEntry steps it implies: with the filter left on, taking
// the entries back to VLAN 0 alone would cut those guests off.
func Undo(w model.Writer, done []plan.Step) error {
	var errs []error
	for _, s := range slices.Backward(done) {
		var err error
		switch s.Kind {
		case plan.AddEntry:
			err = undoEntry(w, s)
		case plan.SetFlags:
			err = w.SetPortFlags(s.PortIndex, s.Prior, s.WithLocked, s.WithMab)
		case plan.DelEntry:
			err = w.ReplaceEntry(s.Entry)
		case plan.SetVlans:
			if s.PriorVlans != nil {
				err = setPortVlans(w, s.PortIndex, s.PriorVlans, s.Vlans)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: undo: %w", s.Doing(), err))
		}
	}
	return errors.Join(errs...)
}

// undoEntry removes the entry AddEntry wrote and puts back what it replaced.
// VLAN 0 entries go back first: re-adding one writes the port's per-VLAN
// copies too, and the exact per-VLAN entries restored after it win. A
// locked entry is not put back: no write can make one (the kernel does,
// at the MAC's next frame), and written back it would be a dynamic entry,
// which lets the MAC through the locked port it was dropped on.
func undoEntry(w model.Writer, s plan.Step) error {
	err := w.DeleteEntry(model.Entry{MAC: s.MAC, Port: s.Port, PortIndex: s.PortIndex})
	if gone(err) {
		err = nil
	}
	prior := slices.Clone(s.PriorEntries)
	slices.SortStableFunc(prior, func(a, b model.Entry) int { return a.Vlan - b.Vlan })
	for _, e := range prior {
		if e.Locked() {
			continue
		}
		if e2 := w.ReplaceEntry(e); e2 != nil && !gone(e2) {
			err = errors.Join(err, e2)
		}
	}
	return err
}

// restore puts back entries a failed step deleted.
func restore(w model.Writer, entries []model.Entry) error {
	var errs []error
	for _, e := range entries {
		if err := w.ReplaceEntry(e); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s: %w", e, err))
		}
	}
	return errors.Join(errs...)
}

// gone reports whether err says the device or entry no longer exists; on
// clean-up that is success (the kernel already did the work).
func gone(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV)
}

// Cleanup carries out every step, whatever fails, and returns the failures
// joined. A device or entry that is already gone counts as done.
func Cleanup(w model.Writer, steps []plan.Step) error {
	var errs []error
	for _, s := range steps {
		if err := do(w, s); err != nil && !gone(err) {
			errs = append(errs, &StepError{Step: s, Err: err})
		}
	}
	return errors.Join(errs...)
}
