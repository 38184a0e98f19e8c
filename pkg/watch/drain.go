package watch

import "time"

// drained reads c, in a goroutine of its own, until the library that
// sends on it closes it; the channel it returns is closed then. A nil c
// counts as drained already.
func drained[T any](c <-chan T) <-chan struct{} {
	done := make(chan struct{})
	if c == nil {
		close(done)
		return done
	}
	go func() {
		for range c {
		}
		close(done)
	}()
	return done
}

// drain waits until every channel is drained, or until deadline (nil
// waits as long as it takes). The libraries' goroutines send without a
// select: what they still have must be read, or they never end.
func drain(deadline <-chan time.Time, channels ...<-chan struct{}) {
	for _, done := range channels {
		select {
		case <-done:
		case <-deadline:
			return
		}
	}
}
