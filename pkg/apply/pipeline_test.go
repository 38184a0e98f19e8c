package apply

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/plan"
)

// pipeKernel is the fake kernel answering pipelined runs as the kernel
// does: every write of a run is carried out, also those after one that
// fails, and each gets its own answer.
type pipeKernel struct {
	*kerneltest.Kernel
	queue []func() error // non-nil inside Pipeline
	piped int            // writes sent pipelined
}

func (k *pipeKernel) later(f func() error) error {
	if k.queue == nil {
		return f()
	}
	k.queue = append(k.queue, f)
	return nil
}

func (k *pipeKernel) SetPortFlags(port int, f model.Flags, withLocked bool) error {
	return k.later(func() error { return k.Kernel.SetPortFlags(port, f, withLocked) })
}

func (k *pipeKernel) ReplaceEntry(e model.Entry) error {
	return k.later(func() error { return k.Kernel.ReplaceEntry(e) })
}

func (k *pipeKernel) DeleteEntry(e model.Entry) error {
	return k.later(func() error { return k.Kernel.DeleteEntry(e) })
}

func (k *pipeKernel) Pipeline(write func()) []error {
	k.queue = []func() error{}
	write()
	q := k.queue
	k.queue = nil
	errs := make([]error, len(q))
	for i, f := range q {
		errs[i] = f()
	}
	k.piped += len(q)
	return errs
}

// TestPipelinedApplySucceeds: a plan of one-message steps goes out as one
// pipelined run and leaves what the step-by-step apply leaves.
func TestPipelinedApplySucceeds(t *testing.T) {
	one, piped := newFake(), &pipeKernel{Kernel: newFake()}
	one.AddEntry(roamed)
	piped.AddEntry(roamed)
	if err := Apply(one, threeNICs()); err != nil {
		t.Fatal(err)
	}
	if err := Apply(piped, threeNICs()); err != nil {
		t.Fatal(err)
	}
	if piped.piped != len(threeNICs()) {
		t.Errorf("%d of %d writes were pipelined", piped.piped, len(threeNICs()))
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
			k := &pipeKernel{Kernel: newFake()}
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
			if k.piped != len(steps) {
				t.Errorf("%d of %d writes were pipelined", k.piped, len(steps))
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
	k := &pipeKernel{Kernel: newFake()}
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
