// Command lxc-hook is fdbhook's libvirt lxc hook: installed as
// /etc/libvirt/hooks/lxc.d/fdbhook, it manages the bridge FDB entries and
// port flags of every managed container NIC (its host veth) once the
// container runs, and cleans up at stop. See 'lxc-hook --help'.
package main

import (
	"os"

	// Ends the process for an event the hook ignores, before the hook's
	// packages initialise.
	_ "github.com/fdbhook/fdbhook/pkg/events/lxcexit"
	"github.com/fdbhook/fdbhook/pkg/hook"
)

func main() {
	os.Exit(hook.NewRunner().RunLxc(os.Args[1:]))
}
