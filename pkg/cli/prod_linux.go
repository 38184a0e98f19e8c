package cli

import (
	"fmt"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/hook"
	"github.com/fdbhook/fdbhook/pkg/host"
)

// NewEnv returns an Env wired to the real world: the process's run on the
// host its environment describes, and the kernel of the current network
// namespace.
func NewEnv() *Env {
	env := host.FromProcess()
	env.OpenKernel = hook.OpenKernel
	return &Env{Env: env, HookChecks: hostHookChecks}
}

// hostHookChecks checks the hooks installed on h against its running
// libvirt daemons, mounts and AppArmor.
func hostHookChecks(h host.Host) []admin.Check {
	daemons, err := admin.Daemons(h.RunDir)
	if err != nil {
		return []admin.Check{{Level: admin.Warn, Name: "hooks", Text: fmt.Sprintf("listing libvirt daemons: %v", err)}}
	}
	return admin.HookExecChecks(h.HooksDir(), daemons, admin.HostExecPolicy(), admin.LxcDriverInstalled())
}
