package watch

import "time"

// Clock is the watcher's time: when queued work is due, when the resync
// timer fires, how long a source waits before it tries again. Production
// uses the system's (SystemClock); tests move a fake one by hand, so no
// decision about time depends on how fast the test machine is.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed,
	// and stop, which releases it before then (stop may be called after
	// it fired, and more than once).
	After(d time.Duration) (c <-chan time.Time, stop func())
}

// SystemClock is the system's time.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) After(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// sleep waits d on clock c, or until done is closed; it reports whether d
// passed.
func sleep(c Clock, d time.Duration, done <-chan struct{}) bool {
	after, stop := c.After(d)
	defer stop()
	select {
	case <-after:
		return true
	case <-done:
		return false
	}
}
