package cli

import (
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/metrics"
	"github.com/fdbhook/fdbhook/pkg/version"
)

const metricsUsage = `Usage: %[1]s metrics [--textfile DIR]
Prometheus metrics from what status finds (per managed bridge: guest ports
managed, unmanaged and excluded, static entries by state, uplinks still
promiscuous and why, vlan_filtering) and from /run/fdbhook (hook runs and
failures by operation, the watcher, the last reconcile), with fdbhook's
version. Without --textfile they go to standard output.
  --textfile DIR   write DIR/fdbhook.prom for node_exporter's textfile
                   collector (--collector.textfile.directory=DIR), through a
                   temporary file and a rename; fdbhook-metrics.timer runs
                   this every minute
Whatever could be read is written; exit status 3 on a bad configuration
(fdbhook_status_success 0 then), 1 when something else could not be read.
`

// metricsSource reads what status reads, through the Env's kernel and
// paths, and the Env's run directory. The watcher serves the same on
// /metrics: metrics.Handler(e.metricsSource()).
func (e *Env) metricsSource() metrics.Source {
	return metrics.Source{
		State: func() (*manage.State, func(), error) {
			st, _, done, err := e.state()
			return st, done, err
		},
		HookChecks: e.hookChecks,
		RunDir:     e.RunDir,
		Version:    version.Version,
	}
}

func metricsCommand(e *Env, args []string) int {
	dir := ""
	switch {
	case len(args) == 0:
	case len(args) == 2 && args[0] == "--textfile" && args[1] != "":
		dir = args[1]
	default:
		return commandError(e, "metrics", "expected no arguments or --textfile DIR")
	}
	if dir != "" {
		if err := metrics.WriteTextfile(dir, e.metricsSource()); err != nil {
			return e.fail(err)
		}
		return host.ExitOK
	}
	reg, c := metrics.NewRegistry(e.metricsSource())
	mfs, err := reg.Gather()
	if err == nil {
		err = metrics.WriteText(e.Stdout, mfs)
	}
	if err == nil {
		err = c.Err()
	}
	if err != nil {
		return e.fail(err)
	}
	return host.ExitOK
}
