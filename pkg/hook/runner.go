package hook

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/apply"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/plan"
	"github.com/fdbhook/fdbhook/pkg/runstate"
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

// Kernel is what a run needs from the kernel: reads for planning, writes
// for applying.
type Kernel interface {
	Link(name string) (*plan.Link, error)
	LinkByIndex(index int) (*plan.Link, error)
	Entries(bridge *plan.Link, mac string) ([]plan.Entry, error)
	PortEntries(bridge, port *plan.Link) ([]plan.Entry, error)
	apply.Writer
	Close()
}

// Runner runs one invocation. main fills it with the real world; tests with
// buffers, a test namespace and temporary paths.
type Runner struct {
	// Program is the binary's name in messages and --help.
	Program string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Getenv  func(string) string
	// OpenKernel connects to the kernel (one connection per run).
	OpenKernel func() (Kernel, error)
	// Libvirt is where libvirt's state files are.
	Libvirt libvirt.Paths
	// LockPath serialises runs that change the kernel: libvirt runs hooks
	// of different guests in parallel, and a duplicate MAC must be seen by
	// the second of two guests starting at once.
	LockPath string
	// LockTimeout bounds the wait for the lock.
	LockTimeout time.Duration
	// RunDir is where runs are counted and reconcile records its outcome;
	// empty counts nothing.
	RunDir runstate.Dir
	// Syslog enables logging to the system log.
	Syslog bool

	log *logrus.Logger
	sys *logrus.Logger // syslog only
}

// DefaultLockPath is the lock file of production runs.
const DefaultLockPath = "/run/fdbhook/lock"

// hookError is a failure with the exit code it maps to.
type hookError struct {
	code int
	err  error
}

func (e *hookError) Error() string { return e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

func fail(code int, format string, args ...any) error {
	return &hookError{code: code, err: fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	var he *hookError
	if errors.As(err, &he) {
		return he.code
	}
	if err != nil {
		return ExitRefused
	}
	return ExitOK
}

// setupLog builds the logger. In hook mode stderr only carries warnings and
// errors (libvirt shows a failed hook's stderr to the admin); an explicit
// FDBHOOK_LOG_LEVEL shows that level on stderr too, for manual runs.
func (r *Runner) setupLog(cfgLevel string, hookMode bool) error {
	syslogLevel, err := parseLevel(cfgLevel)
	if err != nil {
		return err
	}
	stderrLevel := logrus.InfoLevel
	if hookMode {
		stderrLevel = logrus.WarnLevel
	}
	if env := r.Getenv("FDBHOOK_LOG_LEVEL"); env != "" {
		lvl, err := parseLevel(env)
		if err != nil {
			return fmt.Errorf("FDBHOOK_LOG_LEVEL: %w", err)
		}
		stderrLevel, syslogLevel = lvl, lvl
	}
	r.log, r.sys = newLoggers(r.Stderr, stderrLevel, syslogLevel, r.Syslog, "fdbhook")
	return nil
}

// loadConfig reads the configuration named by the environment.
func (r *Runner) loadConfig() (*config.Config, error) {
	cfg, err := config.Load(config.PathFromEnv(r.Getenv))
	if err != nil {
		return nil, &hookError{code: ExitConfig, err: err}
	}
	return cfg, nil
}

// lock takes the run lock, waiting at most LockTimeout. The lock is released
// when the process exits (or unlock is called).
func (r *Runner) lock() (unlock func(), err error) {
	if r.LockPath == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(r.LockPath), 0o755); err != nil {
		return nil, fmt.Errorf("creating lock directory: %w", err)
	}
	f, err := os.OpenFile(r.LockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", r.LockPath, err)
	}
	deadline := time.Now().Add(r.LockTimeout)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("another fdbhook run held %s for more than %s", r.LockPath, r.LockTimeout)
			}
			return nil, fmt.Errorf("locking %s: %w", r.LockPath, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// view joins the kernel and libvirt's files into what the planner reads.
type view struct {
	Kernel
	*libvirt.Files
}

func dryRun(getenv func(string) string) bool {
	switch strings.ToLower(getenv("FDBHOOK_DRY_RUN")) {
	case "", "0", "no", "false":
		return false
	}
	return true
}
