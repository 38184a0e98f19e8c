package apply

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// TestPipelinedApplySucceeds: a plan of one-message steps goes out as one
// pipelined run and leaves what the step-by-step apply leaves.
func TestPipelinedApplySucceeds(t *testing.T) {
	one, piped := newFake(), newFake()
	one.AddEntry(roamed)
	piped.AddEntry(roamed)
	for _, s := range threeNICs() { // one by one: a run of one is not pipelined
		if err := Apply(one, []plan.Step{s}); err != nil {
			t.Fatal(err)
		}
	}
	if err := Apply(piped, threeNICs()); err != nil {
		t.Fatal(err)
	}
	if one.Pipelined() != 0 || piped.Pipelined() != len(threeNICs()) {
		t.Errorf("%d and %d of %d writes were pipelined, want none and all", one.Pipelined(), piped.Pipelined(), len(threeNICs()))
	}
	if a, b := one.State(), piped.State(); a != b {
		t.Errorf("pipelined apply left\n%s\nstep by step\n%s", b, a)
	}
}

// TestPipelinedApplyFailsAtEveryCall: whichever write of a pipelined run
// fails, the writes after it were carried out too, and the kernel still
// ends exactly as it began, with the error of the failed step.
func TestPipelinedApplyFailsAtEveryCall(t *testing.T) {
	steps := threeNICs()
	for n := 1; n <= len(steps); n++ {
		t.Run(fmt.Sprintf("call%d", n), func(t *testing.T) {
			k := newFake()
			k.AddEntry(roamed)
			before := k.State()
			k.FailWith(kerneltest.FailAt(n))
			err := Apply(k, steps)
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("Apply = %v, want *StepError", err)
			}
			if se.Step.MAC != steps[n-1].MAC || se.Step.Kind != steps[n-1].Kind || !errors.Is(err, unix.EIO) {
				t.Errorf("error %q does not name step %d (%s)", err, n, steps[n-1])
			}
			if !strings.HasPrefix(err.Error(), steps[n-1].MAC+" on br0: ") {
				t.Errorf("error %q does not start with \"<mac> on <bridge>: \"", err)
			}
			if se.UndoErr != nil {
				t.Errorf("undo failed: %v", se.UndoErr)
			}
			if k.Pipelined() != len(steps)-1 {
				t.Errorf("%d of %d writes were pipelined, want all but the one that failed before it was sent", k.Pipelined(), len(steps))
			}
			if after := k.State(); after != before {
				t.Errorf("kernel changed by a failed apply:\nbefore %s\nafter  %s\ncalls %v", before, after, k.Calls())
			}
		})
	}
}

// TestPipelinedApplyPortVanishes: the last port disappears during the run;
// its two writes fail, the first failure is the error, and the writes that
// failed are not undone (the kernel did not do them).
func TestPipelinedApplyPortVanishes(t *testing.T) {
	k := newFake()
	k.AddEntry(roamed)
	k.FailWith(func(c kerneltest.Call) error {
		if c.N == 4 {
			k.Delete("vnet12")
		}
		return nil
	})
	want := newFake()
	want.AddEntry(roamed)
	want.Delete("vnet12")
	err := Apply(k, threeNICs())
	var se *StepError
	if !errors.As(err, &se) || !errors.Is(err, unix.ENODEV) || se.Step.Kind != plan.AddEntry || se.Step.Port != "vnet12" {
		t.Fatalf("Apply = %v, want ENODEV of the entry on vnet12", err)
	}
	if se.UndoErr != nil {
		t.Errorf("undo failed: %v", se.UndoErr)
	}
	if got, want := k.State(), want.State(); got != want {
		t.Errorf("left behind:\n%s\nwant\n%s", got, want)
	}
}

// lateAnswers is a kernel that carries out every pipelined write but
// whose answers to those at the indexes late come after the connection's
// timeout: their error is EAGAIN, as kernel.Conn reports a batch it did
// not get the answers of in time.
type lateAnswers struct {
	*kerneltest.Kernel
	late []int
}

func (l *lateAnswers) Pipeline(write func()) []error {
	errs := l.Kernel.Pipeline(write)
	for _, i := range l.late {
		if i < len(errs) && errs[i] == nil {
			errs[i] = fmt.Errorf("kernel did not answer within the netlink timeout: %w", unix.EAGAIN)
		}
	}
	return errs
}

// TestPipelinedApplyLateAnswers: a write the kernel did but answered too
// late may or may not be done as far as the hook can tell, so when the run
// fails it is undone with the others, whether it is the first failure (a
// whole batch timed out) or comes before another failure.
func TestPipelinedApplyLateAnswers(t *testing.T) {
	steps := threeNICs()
	all := make([]int, len(steps))
	for i := range all {
		all[i] = i
	}
	for _, tc := range []struct {
		name string
		late []int
		fail int // the write that fails outright (call number; 0: none)
	}{
		{"the whole batch late", all, 0},
		{"the first write late", []int{0}, 0},
		{"a write late, a later one failing", []int{1}, 5},
		{"a write late after one failing", []int{4}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake()
			fake.AddEntry(roamed)
			before := fake.State()
			if tc.fail > 0 {
				fake.FailWith(kerneltest.FailAt(tc.fail))
			}
			err := Apply(&lateAnswers{Kernel: fake, late: tc.late}, steps)
			var se *StepError
			if !errors.As(err, &se) {
				t.Fatalf("Apply = %v, want a *StepError", err)
			}
			if se.UndoErr != nil {
				t.Errorf("undo failed: %v", se.UndoErr)
			}
			if after := fake.State(); after != before {
				t.Errorf("a write answered late was left done:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}
