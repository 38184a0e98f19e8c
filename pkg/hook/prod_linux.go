package hook

import (
	"os"
	"path/filepath"

	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// NewRunner returns a Runner wired to the real world: the process's stdio
// and environment, the kernel of the current network namespace, libvirt's
// system paths and syslog.
func NewRunner() *Runner {
	return &Runner{
		Program: filepath.Base(os.Args[0]),
		Stdin:   os.Stdin,
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Getenv:  os.Getenv,
		OpenKernel: func() (Kernel, error) {
			return kernel.Open(netns.None(), kernel.DefaultTimeout)
		},
		Libvirt:     libvirt.DefaultPaths,
		LockPath:    DefaultLockPath,
		LockTimeout: DefaultLockTimeout,
		RunDir:      runstate.FromEnv(os.Getenv),
		Syslog:      true,
	}
}
