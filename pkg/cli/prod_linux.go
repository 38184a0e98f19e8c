package cli

import (
	"github.com/fdbhook/fdbhook/pkg/hook"
	"github.com/fdbhook/fdbhook/pkg/host"
)

// NewEnv returns an Env wired to the real world: the process's run on the
// host its environment describes, and the kernel of the current network
// namespace.
func NewEnv() *Env {
	env := host.FromProcess()
	env.OpenKernel = hook.OpenKernel
	return &Env{Env: env}
}
