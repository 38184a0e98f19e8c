package hook

import (
	"os"
	"path/filepath"

	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// DefaultEnv is the real world: the process's stdio and environment,
// libvirt's system paths, the production lock and run directory.
func DefaultEnv() Env {
	return Env{
		Program:     filepath.Base(os.Args[0]),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		Getenv:      os.Getenv,
		Libvirt:     libvirt.DefaultPaths,
		LockPath:    DefaultLockPath,
		LockTimeout: DefaultLockTimeout,
		RunDir:      runstate.FromEnv(os.Getenv),
	}
}

// NewRunner returns a Runner wired to the real world: DefaultEnv, the
// kernel of the current network namespace, and syslog.
func NewRunner() *Runner {
	return &Runner{
		Env: DefaultEnv(),
		OpenKernel: func() (model.Kernel, error) {
			return kernel.Open(netns.None(), kernel.DefaultTimeout)
		},
		Syslog: true,
	}
}
