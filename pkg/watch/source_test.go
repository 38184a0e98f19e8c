package watch

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// runSource runs src until stop is called, at the latest when the test
// ends, and passes its events on through the channel. stop fails the test
// when the source takes more than a second to end.
func runSource(t *testing.T, src Source) (events <-chan Event, stop func()) {
	t.Helper()
	ch := make(chan Event, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() {
		src.Run(ctx, func(e Event) { ch <- e })
		close(ended)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-ended:
			case <-time.After(10 * time.Second):
				t.Errorf("the %s source did not stop within 10 s", src.Name())
			}
		})
	}
	t.Cleanup(stop)
	return ch, stop
}

// quietLog is a logger whose output goes nowhere.
func quietLog() *logrus.Logger {
	log := logrus.New()
	log.Out = io.Discard
	return log
}

// awaitEvent waits up to ten seconds (a bound for a loaded machine, not a
// timing) for an event that ok accepts; other,
// when set, is told of every event before it that ok does not accept.
func awaitEvent(t *testing.T, events <-chan Event, what string, ok func(Event) bool, other func(Event)) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if ok(e) {
				return
			}
			if other != nil {
				other(e)
			}
		case <-deadline:
			t.Fatalf("no event for %s", what)
		}
	}
}
