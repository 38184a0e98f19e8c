package watch

import (
	"testing"
	"time"
)

// TestLostNotes: the first loss resyncs at once; losses within the
// holdoff wait for its end, as one resync; the holdoff doubles while
// losses keep coming, up to its maximum, and is back to its minimum after
// a quiet spell.
func TestLostNotes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	l := newLostNotes(time.Second, 4*time.Second)
	type step struct {
		at     float64
		lost   bool // a loss (else: the deadline passed)
		resync bool
		next   float64 // the deadline after the step (0: none)
	}
	for i, s := range []step{
		{0, true, true, 0},
		{0.1, true, false, 1},
		{0.5, true, false, 1},
		{0.99, false, false, 1},
		{1, false, true, 0}, // holdoff now 2 s
		{1.5, true, false, 3},
		{3, false, true, 0}, // holdoff now 4 s
		{3.5, true, false, 7},
		{7, false, true, 0}, // the maximum: 4 s
		{7.1, true, false, 11},
		{11, false, true, 0},
		{11, false, false, 0}, // nothing pending
		{30, true, true, 0},   // quiet for long: at once, and the minimum again
		{30.5, true, false, 31},
	} {
		var got bool
		if s.lost {
			got = l.lost(at(s.at))
		} else {
			got = l.due(at(s.at))
		}
		var next float64
		if d := l.deadline(); !d.IsZero() {
			next = d.Sub(t0).Seconds()
		}
		if got != s.resync || next != s.next {
			t.Errorf("step %d at %.2f s: resync %v, deadline %.2f; want %v, %.2f", i, s.at, got, next, s.resync, s.next)
		}
	}
	if l.losses != 8 || l.resyncs != 6 {
		t.Errorf("%d losses, %d resyncs; want 8, 6", l.losses, l.resyncs)
	}
}
