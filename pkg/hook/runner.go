package hook

import (
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/logline"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/version"
)

// Exit codes: the host's (package host), as the hooks' tests and usage
// name them.
const (
	ExitOK      = host.ExitOK
	ExitRefused = host.ExitRefused
	ExitUsage   = host.ExitUsage
	ExitConfig  = host.ExitConfig
	ExitInput   = host.ExitInput
)

// Runner runs one hook invocation: a run (host.Env) of a hook binary. main
// fills it with the real world (NewRunner); tests with buffers, a fake
// kernel and temporary paths.
type Runner struct {
	host.Env
	// Syslog enables logging to the system log.
	Syslog bool

	log *logrus.Logger
	sys *logrus.Logger // syslog only
}

// configure reads the configuration and builds the logger at its level,
// or at info when the configuration is broken, so that the error itself is
// logged. stderr only carries warnings and errors (libvirt shows a failed
// hook's stderr to the admin); an explicit FDBHOOK_LOG_LEVEL shows that
// level on stderr too, for manual runs.
func (r *Runner) configure() (cfg *config.Config, cfgErr, logErr error) {
	cfg, cfgErr = r.LoadConfig()
	syslogLevel := logrus.InfoLevel
	if cfgErr == nil {
		if syslogLevel, logErr = logline.ParseLevel(cfg.LogLevel); logErr != nil {
			return cfg, cfgErr, logErr
		}
	}
	stderrLevel := logrus.WarnLevel
	if env := r.LogLevel; env != "" {
		lvl, err := logline.ParseLevel(env)
		if err != nil {
			return cfg, cfgErr, fmt.Errorf("FDBHOOK_LOG_LEVEL: %w", err)
		}
		stderrLevel, syslogLevel = lvl, lvl
	}
	r.log, r.sys = newLoggers(r.Stderr, stderrLevel, syslogLevel, r.Syslog, "fdbhook")
	return cfg, cfgErr, nil
}

func (r *Runner) lock() (unlock func(), err error) { return r.TakeLock(context.Background()) }

// prefetch hands k the guest's ports and MACs to read ahead: the ports,
// their bridges, and the FDB entries of the MACs. It changes no answer,
// only how many round trips they take.
func prefetch(k model.Kernel, g *guest.Guest) {
	ports := map[string][]string{}
	for _, nic := range g.NICs {
		if nic.Target == "" || nic.BadMAC != nil {
			continue
		}
		ports[nic.Target] = append(append(ports[nic.Target], nic.MAC), g.Metadata(nic).ExtraMACs...)
	}
	k.Prefetch(ports)
}

// program is what one hook binary is: its name for --version, its --help
// and the libvirt object its first argument names.
type program struct {
	name, usage, object string
}

var (
	qemuProgram    = program{name: "qemu-hook", usage: qemuUsage, object: "DOMAIN"}
	networkProgram = program{name: "network-hook", usage: networkUsage, object: "NETWORK"}
)

// dispatch runs a hook binary's command line: four arguments are a libvirt
// event, --dry-run before them a dry run of it, and --help and --version
// what they say. Anything else is a bad command line that points to the
// fdbhook command, which has the admin commands.
func (r *Runner) dispatch(args []string, p program, event func(object, op, subop, extra string, dry bool) int) int {
	switch {
	case len(args) == 4:
		return event(args[0], args[1], args[2], args[3], r.DryRun)
	case len(args) == 5 && (args[0] == "--dry-run" || args[0] == "-n"):
		return event(args[1], args[2], args[3], args[4], true)
	case len(args) == 1 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help"):
		fmt.Fprintf(r.Stdout, p.usage, r.Program)
		return ExitOK
	case len(args) == 1 && (args[0] == "--version" || args[0] == "version"):
		fmt.Fprintf(r.Stdout, "%s (fdbhook) %s\n", p.name, version.Version)
		return ExitOK
	}
	fmt.Fprintf(r.Stderr, "%s: not a hook call: expected %s OPERATION SUB-OPERATION EXTRA, got %d arguments; "+
		"the admin commands (status, doctor, reconcile, explain) are 'fdbhook COMMAND', see 'fdbhook --help'\n",
		r.Program, p.object, len(args))
	return ExitUsage
}
