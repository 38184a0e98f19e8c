package watch

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// Hangup is the source of SIGHUP: re-read the configuration and resync.
type Hangup struct{}

func (Hangup) Name() string { return "SIGHUP" }

func (Hangup) Run(ctx context.Context, emit func(Event)) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			emit(Event{Reload: true, Why: "SIGHUP"})
		}
	}
}
