package hook

import (
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"
	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/events"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/logline"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/version"
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

// NewRunner returns a Runner wired to the real world: the process's run
// on the host its environment describes (host.FromProcess), the kernel of
// the current network namespace, and syslog.
func NewRunner() *Runner {
	env := host.FromProcess()
	env.OpenKernel = OpenKernel
	return &Runner{Env: env, Syslog: true}
}

// OpenKernel connects to the kernel of the current network namespace.
func OpenKernel() (model.Kernel, error) { return kernel.Open(netns.None(), kernel.DefaultTimeout) }

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

// program is what one hook binary is: its name for --version, its --help
// and the libvirt object its first argument names.
type program struct {
	name, usage, object string
}

var (
	qemuProgram    = program{name: "qemu-hook", usage: qemuUsage, object: "DOMAIN"}
	lxcProgram     = program{name: "lxc-hook", usage: lxcUsage, object: "CONTAINER"}
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
		return host.ExitOK
	case len(args) == 1 && (args[0] == "--version" || args[0] == "version"):
		fmt.Fprintf(r.Stdout, "%s (fdbhook) %s\n", p.name, version.Version)
		return host.ExitOK
	}
	fmt.Fprintf(r.Stderr, "%s: not a hook call: expected %s OPERATION SUB-OPERATION EXTRA, got %d arguments; "+
		"the admin commands (status, doctor, reconcile, explain) are 'fdbhook COMMAND', see 'fdbhook --help'\n",
		r.Program, p.object, len(args))
	return host.ExitUsage
}

// domainHook is what tells the qemu and lxc hooks apart: their table of
// events (package events), and whether a start may be a live migration's
// (libvirt migrates QEMU guests, not containers).
type domainHook struct {
	table    map[[2]string]events.Op
	migrates bool
}

var (
	qemuDomain = domainHook{table: events.Qemu, migrates: true}
	lxcDomain  = domainHook{table: events.Lxc}
)

// event is one hook call being carried out.
type event struct {
	cfg    *config.Config
	domain string
	op     string
	act    events.Act
	dry    bool
	log    *logrus.Entry
	g      *guest.Guest
	// counted: the run is in the run counts (under the lock).
	counted bool
}

// RunQemu runs the qemu hook with the arguments after the program name and
// returns the exit code.
func (r *Runner) RunQemu(args []string) int {
	return r.dispatch(args, qemuProgram, func(domain, op, subop, _ string, dry bool) int {
		return r.domainHook(qemuDomain, domain, op, subop, dry)
	})
}

// RunLxc runs the lxc hook with the arguments after the program name and
// returns the exit code.
func (r *Runner) RunLxc(args []string) int {
	return r.dispatch(args, lxcProgram, func(name, op, subop, _ string, dry bool) int {
		return r.domainHook(lxcDomain, name, op, subop, dry)
	})
}

// domainHook handles one libvirt event of a domain hook. It never writes
// to stdout. An operation the table ignores returns before the
// configuration is read or the log opened: most of a guest's hook calls
// are such.
func (r *Runner) domainHook(h domainHook, domain, op, subop string, dry bool) int {
	row := h.table[[2]string{op, subop}]
	if row.Act == events.Ignore {
		return host.ExitOK
	}
	cfg, err, logErr := r.configure()
	if logErr != nil {
		fmt.Fprintf(r.Stderr, "fdbhook: %s: %v\n", domain, logErr)
		manage.CountRun(&r.Env, op, true, dry, r.logFor(op))
		if row.MayFail {
			return host.ExitConfig
		}
		return host.ExitOK
	}
	ev := &event{cfg: cfg, domain: domain, op: op, act: row.Act, dry: dry, log: r.log.WithField("guest", domain)}
	if err == nil {
		err = r.domainEvent(h, ev)
	}
	if err != nil && !ev.counted {
		manage.CountRun(&r.Env, op, true, dry, r.logFor(op))
	}
	return r.exit(ev, subop, row, err)
}

// exit turns an event's outcome into the exit code, logging a failure once.
func (r *Runner) exit(ev *event, subop string, row events.Op, err error) int {
	if err == nil {
		return host.ExitOK
	}
	switch {
	case !row.MayFail:
		ev.log.Errorf("%s %s: %v (exit 0: failing here would not undo anything and could kill the guest)", ev.op, subop, err)
		return host.ExitOK
	case ev.cfg != nil && ev.cfg.OnError == config.Warn && host.ExitCode(err) == host.ExitRefused:
		ev.log.Warnf("%v; on_error = \"warn\": the guest starts with its ports unmanaged", err)
		return host.ExitOK
	}
	r.sys.WithField("guest", ev.domain).Errorf("%s %s: %v", ev.op, subop, err) // stderr gets the one line below
	// libvirt shows this line to the admin: whatever the cause quotes, it
	// stays one line.
	fmt.Fprintf(r.Stderr, "fdbhook: %s\n", config.OneLine(fmt.Sprintf("%s: %v", ev.domain, err)))
	return host.ExitCode(err)
}

// domainEvent reads the guest from standard input and hands the event to
// the engine (manage.Hook): plan, print or carry out, record.
func (r *Runner) domainEvent(h domainHook, ev *event) (err error) {
	if !ev.cfg.Present || ev.cfg.Empty() {
		ev.log.Debugf("%s: no bridges or networks configured in %s: nothing managed", ev.op, ev.cfg.Path)
		return nil
	}
	if ev.g, err = r.readGuest(ev); err != nil {
		return err
	}
	ev.counted, err = manage.Hook(&r.Env, ev.cfg, manage.Event{Op: ev.op, Act: ev.act, Guest: ev.g, Dry: ev.dry, Migrates: h.migrates, Log: ev.log})
	return err
}

// readGuest reads the domain XML on stdin: malformed input is host.ExitInput,
// an I/O failure host.ExitRefused.
func (r *Runner) readGuest(ev *event) (*guest.Guest, error) {
	g, err := guest.Read(r.Stdin)
	if err != nil {
		code := host.ExitInput
		if !errors.Is(err, guest.ErrInput) {
			code = host.ExitRefused
		}
		return nil, &host.ExitError{Code: code, Err: err}
	}
	if g.Name != ev.domain {
		ev.log.Warnf("the XML on stdin is for guest %q: using it", g.Name)
	}
	return g, nil
}

// logFor is the log of operation op, or nil before the log is opened.
func (r *Runner) logFor(op string) *logrus.Entry {
	if r.log == nil {
		return nil
	}
	return r.log.WithField("operation", op)
}
