package hook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/logline"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	"github.com/fdbhook/fdbhook/pkg/version"
)

// Exit codes. libvirt treats any non-zero exit of a start hook as "do not
// start the guest"; the distinct values tell an admin or a test why.
const (
	ExitOK      = 0 // done, nothing to do, or on_error = "warn"
	ExitRefused = 1 // a managed NIC could not be managed; nothing left applied
	ExitUsage   = 2 // bad command line
	ExitConfig  = 3 // bad configuration file
	ExitInput   = 4 // bad hook input (XML)
)

// Env is what one invocation of an fdbhook program reads, writes and acts
// on, besides the kernel: the hooks' Runner and the fdbhook command share
// it. main fills it with the real world (DefaultEnv); tests with buffers
// and temporary paths.
type Env struct {
	// Program is the binary's name in messages and --help.
	Program string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Getenv  func(string) string
	// Libvirt is where libvirt's state files are.
	Libvirt libvirt.Paths
	// LockPath serialises runs that change the kernel: libvirt runs hooks
	// of different guests in parallel, and a duplicate MAC must be seen by
	// the second of two guests starting at once.
	LockPath string
	// LockTimeout bounds the wait for the lock.
	LockTimeout time.Duration
	// RunDir is the run directory: the hooks count their runs there (under
	// the lock), reconcile records its outcome, and the metrics read both.
	// Empty records nothing.
	RunDir runstate.Dir
	// Now is the clock (time.Now when nil): the migration marks' times.
	Now func() time.Time
}

// Clock returns the time now, by e.Now.
func (e *Env) Clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Runner runs one hook invocation. main fills it with the real world;
// tests with buffers, a test namespace and temporary paths.
type Runner struct {
	Env
	// OpenKernel connects to the kernel (one connection per run).
	OpenKernel func() (model.Kernel, error)
	// Syslog enables logging to the system log.
	Syslog bool

	log *logrus.Logger
	sys *logrus.Logger // syslog only
}

// The lock of production runs, and how long a run waits for it.
const (
	DefaultLockPath    = "/run/fdbhook/lock"
	DefaultLockTimeout = 10 * time.Second
)

// ExitError is a failure with the exit code it maps to.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the exit code for err: its ExitError's, ExitRefused for any
// other error, ExitOK for nil.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return ExitRefused
	}
	return ExitOK
}

// configure reads the configuration and builds the logger at its level,
// or at info when the configuration is broken, so that the error itself is
// logged. stderr only carries warnings and errors (libvirt shows a failed
// hook's stderr to the admin); an explicit FDBHOOK_LOG_LEVEL shows that
// level on stderr too, for manual runs.
func (r *Runner) configure() (cfg *config.Config, cfgErr, logErr error) {
	cfg, cfgErr = LoadConfig(r.Getenv)
	syslogLevel := logrus.InfoLevel
	if cfgErr == nil {
		if syslogLevel, logErr = logline.ParseLevel(cfg.LogLevel); logErr != nil {
			return cfg, cfgErr, logErr
		}
	}
	stderrLevel := logrus.WarnLevel
	if env := r.Getenv(logline.EnvLevel); env != "" {
		lvl, err := logline.ParseLevel(env)
		if err != nil {
			return cfg, cfgErr, fmt.Errorf("FDBHOOK_LOG_LEVEL: %w", err)
		}
		stderrLevel, syslogLevel = lvl, lvl
	}
	r.log, r.sys = newLoggers(r.Stderr, stderrLevel, syslogLevel, r.Syslog, "fdbhook")
	return cfg, cfgErr, nil
}

// LoadConfig reads the configuration named by the environment; a bad file
// is an ExitError with ExitConfig.
func LoadConfig(getenv func(string) string) (*config.Config, error) {
	cfg, err := config.Load(config.PathFromEnv(getenv))
	if err != nil {
		return nil, &ExitError{Code: ExitConfig, Err: err}
	}
	return cfg, nil
}

func (r *Runner) lock() (unlock func(), err error) { return Lock(r.LockPath, r.LockTimeout) }

// Lock takes the lock of runs that change the kernel (path; none when ""),
// waiting at most timeout. The lock is released when the process exits (or
// unlock is called).
func Lock(path string, timeout time.Duration) (unlock func(), err error) {
	return runstate.Lock(context.Background(), path, timeout)
}

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

// PlanView joins the kernel and libvirt's files into what the planner reads.
type PlanView struct {
	model.Reader
	*libvirt.Files
}

// DryRun reports whether the environment asks for a dry run
// (FDBHOOK_DRY_RUN set to anything but "", 0, no or false).
func DryRun(getenv func(string) string) bool {
	switch strings.ToLower(getenv("FDBHOOK_DRY_RUN")) {
	case "", "0", "no", "false":
		return false
	}
	return true
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
		return event(args[0], args[1], args[2], args[3], DryRun(r.Getenv))
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
