package hook

import (
	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
)

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
