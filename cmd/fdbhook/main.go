// Command fdbhook is fdbhook's admin command, installed as /usr/sbin/fdbhook:
// status, doctor, reconcile and explain. The libvirt hooks are the
// qemu-hook and network-hook binaries. See 'fdbhook --help'.
package main

import (
	"os"

	"github.com/fdbhook/fdbhook/pkg/cli"
)

func main() {
	os.Exit(cli.Main(cli.NewEnv(), os.Args[1:]))
}
