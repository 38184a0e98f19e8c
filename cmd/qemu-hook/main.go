// Command qemu-hook is fdbhook's libvirt qemu hook: installed as
// /etc/libvirt/hooks/qemu.d/fdbhook, it manages the bridge FDB entries and
// port flags of every managed guest NIC at start and cleans up at stop.
// See 'qemu-hook --help'.
package main

import (
	"os"

	// Ends the process for an event the hook ignores, before the hook's
	// packages initialise.
	_ "github.com/fdbhook/fdbhook/pkg/events/qemuexit"
	"github.com/fdbhook/fdbhook/pkg/hook"
)

func main() {
	os.Exit(hook.NewRunner().RunQemu(os.Args[1:]))
}
