package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/metrics"
	"github.com/fdbhook/fdbhook/pkg/watch"
)

func watchCommand(e *Env, args []string) int {
	return watch.Main(e.Env, args, e.serveMetrics)
}

// serveMetrics listens on addr for the watcher's /metrics, which answer
// what "fdbhook metrics" prints, read at each scrape.
func (e *Env) serveMetrics(addr string) (func(context.Context) error, error) {
	l, err := metrics.Listen(addr)
	if err != nil {
		return nil, err
	}
	h := metrics.Handler(e.metricsSource())
	return func(ctx context.Context) error { return metrics.Serve(ctx, l, h) }, nil
}

// watcherReport reads the watcher's lock; nil when it cannot be read.
func watcherReport(e *Env) *admin.WatcherReport {
	w, running, err := e.RunDir.WatcherRunning()
	if err != nil {
		fmt.Fprintf(e.Stderr, "%s: %v\n", e.Program, err)
		return nil
	}
	if !running {
		return &admin.WatcherReport{}
	}
	return &admin.WatcherReport{Running: true, PID: w.PID, Since: w.Since}
}

// watcherCheck is doctor's line about the watcher.
func watcherCheck(wr *admin.WatcherReport) admin.Check {
	switch {
	case wr == nil:
		return admin.Check{Level: admin.Warn, Name: "watcher", Text: "cannot tell whether 'fdbhook watch' runs"}
	case wr.Running:
		return admin.Check{Level: admin.OK, Name: "watcher", Text: fmt.Sprintf("'fdbhook watch' runs (pid %d) since %s", wr.PID, wr.Since.Format(time.RFC3339))}
	}
	return admin.Check{Level: admin.Warn, Name: "watcher",
		Text: "'fdbhook watch' does not run: hotplugged NICs, NICs moved to another bridge and flags or entries changed by hand stay unmanaged until the next start; start fdbhook.service (or run 'fdbhook watch' under a supervisor)"}
}
