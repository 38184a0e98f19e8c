package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/host"
)

// Usage is the --help of "fdbhook watch".
const Usage = `Usage: %[1]s watch

Runs in the foreground and keeps every running guest's managed ports as a
start leaves them, between the start and the stop no hook sees: a
hotplugged NIC is managed, an unplugged one leaves nothing behind, a NIC
moved to another bridge is managed there, learning or flooding turned back
on and static entries deleted are put back, and a configuration change
(SIGHUP, or the file changing) applies to the running guests. When a guest
starts or resumes here its entries are written on its own taps; an entry
that roams while the guest runs is reported, not moved back.

It listens to libvirt's domain events (/run/libvirt/libvirt-sock or
virtqemud-sock, reconnecting when libvirtd restarts), the kernel's link and
FDB notifications and libvirt's live XML files (/run/libvirt/qemu, and
/run/libvirt/lxc, which is how it sees containers), and re-checks everything
every [watch] resync (default 60s). It changes the kernel only through the
hooks' planner and applier, under their lock, all or nothing per guest.
One watcher runs per host (lock /run/fdbhook/watch.lock).

Logs go to stderr and syslog. SIGTERM or SIGINT stop it (exit 0).
Exit status: 1 another watcher runs or a start-up failure, 2 bad command
line, 3 bad configuration.
`

// MetricsServer listens on addr, the [watch] metrics setting, and returns
// the function that answers /metrics there until its context ends.
type MetricsServer func(addr string) (serve func(context.Context) error, err error)

// Main runs "fdbhook watch" with the arguments after "watch" in the run
// env and returns the exit code. metrics (nil: none) serves [watch]
// metrics when it is set.
func Main(env host.Env, args []string, metrics MetricsServer) int {
	if code, done := parseArgs(env.Program, args, env.Stdout, env.Stderr); done {
		return code
	}
	cfg, log, err := loadConfig(env.Config, env.LogLevel, env.Stderr, env.StderrKept)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: watch: %v\n", env.Program, err)
		return host.ExitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if addr := cfg.Watch.Metrics; addr != "" && metrics != nil {
		wait, err := serveMetrics(ctx, addr, metrics, log)
		if err != nil {
			log.Errorf("[watch] metrics = %q: %v", addr, err)
			return host.ExitRefused
		}
		defer func() {
			stop() // ends serve, whatever ended the watcher
			wait()
		}()
	}
	w := &Watcher{
		Log:        log,
		Host:       env.Host,
		OpenKernel: env.OpenKernel,
		Sources: []Source{
			&Libvirt{Sockets: env.Sockets, Log: log},
			&Netlink{NS: netns.None(), Log: log},
			&Files{GuestDirs: []string{env.Libvirt.QemuRunDir, env.Libvirt.LxcRunDir}, ConfigPath: env.Config, Log: log},
			Hangup{},
		},
	}
	return exitCode(w.Run(ctx), log)
}

// parseArgs answers --help; done is set when Main is to return code
// at once. "watch" takes no other argument.
func parseArgs(program string, args []string, stdout, stderr io.Writer) (code int, done bool) {
	for _, a := range args {
		switch a {
		case "-h", "--help":
			fmt.Fprintf(stdout, Usage, program)
			return host.ExitOK, true
		default:
			fmt.Fprintf(stderr, "%s: watch: unexpected %q; usage: watch [--help]\n", program, a)
			return host.ExitUsage, true
		}
	}
	return host.ExitOK, false
}

// serveMetrics starts serving [watch] metrics on addr until ctx ends;
// wait, after ctx ended, lets a scrape in flight finish, but not for long:
// it must not delay the exit.
func serveMetrics(ctx context.Context, addr string, metrics MetricsServer, log *logrus.Logger) (wait func(), err error) {
	serve, err := metrics(addr)
	if err != nil {
		return nil, err
	}
	served := make(chan error, 1)
	go func() { served <- serve(ctx) }()
	log.Infof("serving Prometheus metrics on %s/metrics", addr)
	return func() {
		select {
		case err := <-served:
			if err != nil {
				log.Warnf("metrics: %v", err)
			}
		case <-time.After(500 * time.Millisecond):
		}
	}, nil
}

// exitCode is the watcher's exit code for the error Run returned: for a
// configuration Run could not read, ExitConfig; ExitRefused for anything
// else.
func exitCode(err error, log *logrus.Logger) int {
	if err == nil {
		return host.ExitOK
	}
	log.Errorf("%v", err)
	var cerr *config.Error
	if errors.As(err, &cerr) {
		return host.ExitConfig
	}
	return host.ExitRefused
}
