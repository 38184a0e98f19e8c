package cli

import (
	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/hook"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
)

// NewEnv returns an Env wired to the real world: the hooks' DefaultEnv and
// the kernel of the current network namespace.
func NewEnv() *Env {
	return &Env{
		Env: hook.DefaultEnv(),
		OpenKernel: func() (model.Kernel, error) {
			return kernel.Open(netns.None(), kernel.DefaultTimeout)
		},
	}
}
