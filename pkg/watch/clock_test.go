package watch

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock the test moves by hand (Advance). Code that waits
// on it (After) says so on the asked channel, so a test can wait for a
// goroutine to reach its wait, see how long it asked for, and only then
// move the clock: an explicit point of synchronisation, never a race.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	asked  chan time.Duration
}

type fakeTimer struct {
	due  time.Time
	c    chan time.Time
	done bool // fired or stopped
}

// epoch is where every fake clock starts.
var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newFakeClock() *fakeClock {
	return &fakeClock{now: epoch, asked: make(chan time.Duration, 4096)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	t := &fakeTimer{due: c.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- c.now
		t.done = true
	} else {
		c.timers = append(c.timers, t)
	}
	c.mu.Unlock()
	select {
	case c.asked <- d:
	default: // nobody listens: a long-running loop asks over and over
	}
	return t.c, func() {
		c.mu.Lock()
		t.done = true
		c.mu.Unlock()
	}
}

// Advance moves the clock by d and fires every timer due by then.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	live := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.due.After(c.now):
			t.c <- c.now
			t.done = true
		default:
			live = append(live, t)
		}
	}
	c.timers = live
}

// AdvanceTo moves the clock to at (never back).
func (c *fakeClock) AdvanceTo(at time.Time) {
	if d := at.Sub(c.Now()); d > 0 {
		c.Advance(d)
	}
}

// nextWait waits for the code under test to call After and returns the
// duration it asked for. The real-time bound only fails a test whose code
// never gets there.
func (c *fakeClock) nextWait(t *testing.T, what string) time.Duration {
	t.Helper()
	select {
	case d := <-c.asked:
		return d
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing waited on the clock within 5 s", what)
		return 0
	}
}

// noWait fails t when the code under test asked for a wait.
func (c *fakeClock) noWait(t *testing.T, what string) {
	t.Helper()
	select {
	case d := <-c.asked:
		t.Fatalf("%s: waited %v", what, d)
	default:
	}
}

func TestFakeClockFiresWhenDue(t *testing.T) {
	c := newFakeClock()
	ch, _ := c.After(time.Second)
	c.Advance(999 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("fired before its time")
	default:
	}
	c.Advance(time.Millisecond)
	select {
	case at := <-ch:
		if !at.Equal(epoch.Add(time.Second)) {
			t.Errorf("fired with %v", at)
		}
	default:
		t.Fatal("not fired at its time")
	}
	ch, stop := c.After(time.Second)
	stop()
	c.Advance(time.Hour)
	select {
	case <-ch:
		t.Fatal("a stopped timer fired")
	default:
	}
}
