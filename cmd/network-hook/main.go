// Command network-hook is fdbhook's libvirt network hook, installed as
// /etc/libvirt/hooks/network.d/fdbhook: it applies bridge policy when a
// managed network starts. See 'network-hook --help'.
package main

import (
	"os"

	// Ends the process for an event the hook ignores, before the hook's
	// packages initialise.
	_ "github.com/fdbhook/fdbhook/pkg/events/networkexit"
	"github.com/fdbhook/fdbhook/pkg/hook"
)

func main() {
	os.Exit(hook.NewRunner().RunNetwork(os.Args[1:]))
}
