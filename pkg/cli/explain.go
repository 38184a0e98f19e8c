package cli

import (
	"fmt"
	"os"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/manage"
)

const explainUsage = `Usage: %[1]s explain FILE|-
Prints what a guest start would do with the domain XML in FILE (or on
standard input for -), against the running kernel and the configuration:
every port, flag and entry, every skipped NIC and why, every refusal. Takes
a libvirt live XML (/run/libvirt/qemu/GUEST.xml, /run/libvirt/lxc/GUEST.xml)
or 'virsh dumpxml GUEST'; a container's (<domain type='lxc'>) must be running.
Changes nothing. Exit status 1 when a NIC would be refused, 4 when the XML
cannot be read.
`

// explain prints the start plan for a domain XML file on stdout.
func explain(e *Env, args []string) int {
	if len(args) != 1 {
		return commandError(e, "explain", "it wants one FILE (or - for standard input)")
	}
	file := args[0]
	in := e.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			fmt.Fprintf(e.Stderr, "fdbhook: %v\n", err)
			return host.ExitInput
		}
		defer f.Close()
		in = f
	}
	cfg, err := e.LoadConfig()
	if err != nil {
		return e.fail(err)
	}
	g, err := guest.Read(in)
	if err != nil {
		fmt.Fprintf(e.Stderr, "fdbhook: %s: %v\n", file, err)
		return host.ExitInput
	}
	k, err := e.OpenKernel()
	if err != nil {
		return e.fail(err)
	}
	defer k.Close()
	v := manage.HostView{Reader: k, Files: libvirt.New(e.Libvirt)}
	p, err := manage.StartPlan(cfg, g, v, v)
	if err != nil {
		fmt.Fprintf(e.Stderr, "fdbhook: %s: %v\n", g.Name, err)
		return host.ExitRefused
	}
	if !cfg.Present {
		fmt.Fprintf(e.Stdout, "note: %s does not exist: fdbhook manages nothing\n", cfg.Path)
	}
	fmt.Fprint(e.Stdout, p.Format())
	if len(p.Refusals) > 0 {
		return host.ExitRefused
	}
	return host.ExitOK
}
