package lab

import (
	"errors"
	"testing"
)

// TestHeldStill: the witness's read counts only between two equal reads of
// the value; a value that changes in every round is never taken as still,
// and an error of a read ends it.
func TestHeldStill(t *testing.T) {
	n := 0
	counter := func() (int, error) { n++; return n, nil }
	witness := func() (string, error) { return "seen", nil }
	if _, _, still, err := HeldStill(counter, witness); still || err != nil || n != stableReads+1 {
		t.Errorf("a value that changes every read: still %v, err %v after %d reads; want not still after %d", still, err, n, stableReads+1)
	}
	reads := []int{1, 2, 2}
	settles := func() (int, error) { v := reads[0]; reads = reads[1:]; return v, nil }
	if w, v, still, err := HeldStill(settles, witness); !still || err != nil || v != 2 || w != "seen" {
		t.Errorf("a value that settles at 2: %q, %d, still %v, %v", w, v, still, err)
	}
	boom := errors.New("boom")
	if _, _, still, err := HeldStill(func() (int, error) { return 1, nil }, func() (string, error) { return "", boom }); still || !errors.Is(err, boom) {
		t.Errorf("a failing witness: still %v, err %v", still, err)
	}
}
