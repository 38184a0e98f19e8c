package manage

import (
	"testing"

	"github.com/fdbhook/fdbhook/test/lab"
)

// TestStarted pins when a guest counts as started or resumed since it was
// last seen, from its live XML alone.
func TestStarted(t *testing.T) {
	seen := func(state, reason string, pid int) *Sighting {
		return &Sighting{State: state, Reason: reason, Pid: pid}
	}
	for _, tc := range []struct {
		name  string
		prev  *Sighting
		now   lab.Status
		start bool
	}{
		{"new, running", nil, lab.Status{State: "running", Reason: "booted", Pid: 7}, true},
		{"new, paused", nil, lab.Status{State: "paused", Reason: "user", Pid: 7}, false},
		{"running as before", seen("running", "booted", 7), lab.Status{State: "running", Reason: "booted", Pid: 7}, false},
		{"resumed", seen("paused", "user", 7), lab.Status{State: "running", Reason: "unpaused", Pid: 7}, true},
		{"paused and resumed in between", seen("running", "booted", 7), lab.Status{State: "running", Reason: "unpaused", Pid: 7}, true},
		{"migrated here", seen("paused", "migration", 7), lab.Status{State: "running", Reason: "migrated", Pid: 7}, true},
		{"restarted in between", seen("running", "booted", 7), lab.Status{State: "running", Reason: "booted", Pid: 8}, true},
		{"paused now", seen("running", "booted", 7), lab.Status{State: "paused", Reason: "user", Pid: 7}, false},
	} {
		g := parse(t, lab.Domain{Name: "g1"}.Live(tc.now))
		if got := Started(tc.prev, g); got != tc.start {
			t.Errorf("%s: started %v, want %v", tc.name, got, tc.start)
		}
		if s := Sight(g); s.State != tc.now.State || s.Reason != tc.now.Reason || s.Pid != tc.now.Pid {
			t.Errorf("%s: sighting %+v of %+v", tc.name, s, tc.now)
		}
	}
}
