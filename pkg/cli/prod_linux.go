package cli

import (
	"fmt"

	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/admin"
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
		HookChecks: hostHookChecks,
	}
}

// hostHookChecks checks the installed hooks against this host's running
// libvirt daemons, mounts and AppArmor.
func hostHookChecks(hooksDir string) []admin.Check {
	daemons, err := admin.Daemons()
	if err != nil {
		return []admin.Check{{Level: admin.Warn, Name: "hooks", Text: fmt.Sprintf("listing libvirt daemons: %v", err)}}
	}
	return admin.HookExecChecks(hooksDir, daemons, admin.HostExecPolicy(), admin.LxcDriverInstalled())
}
