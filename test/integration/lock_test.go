package integration

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// slowReads is a kernel connection that waits after each FDB lookup, before
// returning what it read: the time between a run's duplicate-MAC check and
// its writes becomes long enough that two runs not kept apart by the run
// lock both read the FDB before either writes.
type slowReads struct {
	model.Kernel
	delay time.Duration
}

func (k slowReads) Entries(br *model.Link, mac string) ([]model.Entry, error) {
	es, err := k.Kernel.Entries(br, mac)
	time.Sleep(k.delay)
	return es, err
}

// TestRunLockSerialisesDuplicateCheck: two guests with the same MAC start
// at once while every FDB lookup returns only 200 ms after it read. Only the run lock makes
// the second run plan after the first has written its entry; without it
// both see no entry, both exit 0, and the second's entry replaces the
// first's. With it exactly one starts and the other is refused, naming the
// winner's port, with its own tap untouched.
func TestRunLockSerialisesDuplicateCheck(t *testing.T) {
	t.Parallel()
	const reps = 3
	for rep := 1; rep <= reps; rep++ {
		l := newStdLab(t)
		taps := []string{"fdbtla", "fdbtlb"}
		for _, tap := range taps {
			l.AddTap(tap, "br0")
		}
		p := l.inProcess(t, defaultConfig)
		p.wrap = func(k model.Kernel) model.Kernel { return slowReads{Kernel: k, delay: 200 * time.Millisecond} }
		m := mac(13, rep)
		res := make([]result, 2)
		var wg sync.WaitGroup
		for i, tap := range taps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := "fdbt-" + tap
				res[i] = p.run(t, domain(name, "", nic{MAC: m, Bridge: "br0", Target: tap}), name, "start", "begin", "-")
			}()
		}
		wg.Wait()
		winner, loser := 0, 1
		if res[0].Code != 0 {
			winner, loser = 1, 0
		}
		if res[winner].Code != 0 || res[loser].Code != 1 {
			t.Fatalf("rep %d: want one exit 0 and one exit 1, got %s and %s", rep, res[0], res[1])
		}
		if !strings.Contains(res[loser].Stderr, "duplicate MAC") || !strings.Contains(res[loser].Stderr, taps[winner]) {
			t.Errorf("rep %d: refusal does not name the duplicate on %s: %s", rep, taps[winner], res[loser])
		}
		l.checkManaged(t, taps[winner], m)
		if pt := l.snap().Ports[taps[loser]]; !pt.Learning || !pt.Flood {
			t.Errorf("rep %d: refused guest's tap %s changed: %s", rep, taps[loser], pt)
		}
	}
}
