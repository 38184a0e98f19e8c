package host

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// The environment variables, each with the default it replaces.
const (
	EnvConfig      = "FDBHOOK_CONFIG"       // the configuration file, DefaultConfig
	EnvRunDir      = "FDBHOOK_RUN_DIR"      // the run directory, DefaultRunDir
	EnvLock        = "FDBHOOK_LOCK"         // the run lock, DefaultLock
	EnvLibvirtRun  = "FDBHOOK_LIBVIRT_RUN"  // libvirt's run directory, /run/libvirt
	EnvLibvirtEtc  = "FDBHOOK_LIBVIRT_ETC"  // libvirt's configuration directory, /etc/libvirt
	EnvLibvirtSock = "FDBHOOK_LIBVIRT_SOCK" // libvirt's socket, DefaultSockets
	EnvDryRun      = "FDBHOOK_DRY_RUN"      // a dry run, when set to anything but "", 0, no or false
	EnvLogLevel    = "FDBHOOK_LOG_LEVEL"    // the log level, on stderr too, instead of log_level
	// EnvJournal is systemd's, not fdbhook's: set for a service whose
	// standard error the journal keeps.
	EnvJournal = "JOURNAL_STREAM"
)

// The defaults: where things are on a host as the packages install them.
const (
	DefaultConfig     = "/etc/fdbhook/fdbhook.toml"
	DefaultRunDir     = runstate.Dir("/run/fdbhook")
	DefaultLock       = "/run/fdbhook/lock"
	DefaultLibvirtRun = "/run/libvirt"
	DefaultLibvirtEtc = "/etc/libvirt"
	DefaultProc       = "/proc"
	// DefaultLockTimeout bounds a run's wait for the lock.
	DefaultLockTimeout = 10 * time.Second
)

// DefaultSockets are libvirt's sockets, tried in order: the monolithic
// libvirtd's, then the modular QEMU driver daemon's.
var DefaultSockets = []string{"/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock"}

// Host is where everything fdbhook reads and writes is.
type Host struct {
	// Config is the configuration file.
	Config string
	// RunDir holds the migration marks, the hooks' run counts, the
	// watcher's lock and the last reconcile's record.
	RunDir runstate.Dir
	// Lock serialises the runs that change the kernel: libvirt runs hooks
	// of different guests in parallel, and a duplicate MAC must be seen by
	// the second of two guests starting at once. LockTimeout bounds the
	// wait for it.
	Lock        string
	LockTimeout time.Duration
	// Libvirt are libvirt's state files; LibvirtEtc its configuration
	// directory (the guests' definitions, the hooks).
	Libvirt    libvirt.Paths
	LibvirtEtc string
	// Sockets are libvirt's sockets, tried in order.
	Sockets []string
	// DryRun asks for a dry run; LogLevel, when set, replaces log_level
	// and shows that level on stderr too.
	DryRun   bool
	LogLevel string
	// StderrKept says that the journal keeps standard error (systemd).
	StderrKept bool
}

// FromEnv resolves the host from the environment: each path is its
// default unless its variable names another.
func FromEnv(getenv func(string) string) Host {
	or := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	run, etc := or(EnvLibvirtRun, DefaultLibvirtRun), or(EnvLibvirtEtc, DefaultLibvirtEtc)
	h := Host{
		Config:      or(EnvConfig, DefaultConfig),
		RunDir:      runstate.Dir(or(EnvRunDir, string(DefaultRunDir))),
		Lock:        or(EnvLock, DefaultLock),
		LockTimeout: DefaultLockTimeout,
		Libvirt:     LibvirtPaths(run, etc),
		LibvirtEtc:  etc,
		Sockets:     DefaultSockets,
		DryRun:      truthy(getenv(EnvDryRun)),
		LogLevel:    getenv(EnvLogLevel),
		StderrKept:  getenv(EnvJournal) != "",
	}
	if s := getenv(EnvLibvirtSock); s != "" {
		h.Sockets = []string{s}
	} else if run != DefaultLibvirtRun {
		h.Sockets = []string{filepath.Join(run, "libvirt-sock"), filepath.Join(run, "virtqemud-sock")}
	}
	return h
}

// LibvirtPaths are libvirt's state files under its run directory run and
// its configuration directory etc.
func LibvirtPaths(run, etc string) libvirt.Paths {
	return libvirt.Paths{
		NetworkDirs: []string{filepath.Join(run, "network"), filepath.Join(etc, "qemu", "networks")},
		QemuRunDir:  filepath.Join(run, "qemu"),
		LxcRunDir:   filepath.Join(run, "lxc"),
		ProcDir:     DefaultProc,
	}
}

// Default is the host as the packages install it.
func Default() Host { return FromEnv(func(string) string { return "" }) }

// DefinedDirs are the directories of the guests' persistent definitions:
// the QEMU driver's, then the LXC driver's.
func (h Host) DefinedDirs() (qemu, lxc string) {
	return filepath.Join(h.LibvirtEtc, "qemu"), filepath.Join(h.LibvirtEtc, "lxc")
}

// HooksDir is libvirt's hook directory.
func (h Host) HooksDir() string { return filepath.Join(h.LibvirtEtc, "hooks") }

// truthy reads a yes/no variable: anything but "", 0, no and false is yes.
func truthy(v string) bool {
	switch strings.ToLower(v) {
	case "", "0", "no", "false":
		return false
	}
	return true
}
