package cli

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/version"
	"github.com/fdbhook/fdbhook/pkg/watch"
)

// Command is one row of the command table.
type Command struct {
	// Name is the word on the command line: fdbhook NAME ARGS...
	Name string
	// Summary is the one line shown in fdbhook --help.
	Summary string
	// Usage is the command's --help text; %[1]s is the program name.
	Usage string
	// Run runs the command with the arguments after its name and returns
	// the exit code.
	Run func(env *Env, args []string) int
}

// Commands is every fdbhook command, in the order --help lists them. A new
// command is a new row here and its Run function in a file of its own.
var Commands = []Command{
	{Name: "status", Summary: "show managed bridges, their ports and static entries, and problems",
		Usage: statusUsage, Run: status},
	{Name: "doctor", Summary: "check whether fdbhook can work on this host",
		Usage: doctorUsage, Run: doctor},
	{Name: "reconcile", Summary: "give running guests what a start would, remove stale entries",
		Usage: reconcileUsage, Run: reconcile},
	{Name: "explain", Summary: "print the start plan for a domain XML, changing nothing",
		Usage: explainUsage, Run: explain},
	{Name: "watch", Summary: "keep running guests' ports managed between start and stop",
		Usage: watch.Usage, Run: watchCommand},
	{Name: "metrics", Summary: "Prometheus metrics, on stdout or as a node_exporter textfile",
		Usage: metricsUsage, Run: metricsCommand},
}

// Env is what a command reads, writes and acts on: a run on the host
// (host.Env: stdio, the paths the environment may move, the hooks' lock,
// which reconcile takes, the clock and the kernel). main fills it with
// the real world (NewEnv); tests with buffers, a fake kernel and
// temporary paths.
type Env struct {
	host.Env
	// HookChecks checks what keeps libvirt from running the hooks
	// installed on the host (admin.HookExecChecks), for status and the
	// metrics; nil: not checked.
	HookChecks func(host.Host) []admin.Check
}

// Main runs the fdbhook command line (the arguments after the program name)
// and returns the exit code.
func Main(env *Env, args []string) int {
	if len(args) == 0 {
		return usageError(env, "no command given")
	}
	switch args[0] {
	case "-h", "--help", "help":
		if len(args) != 1 {
			return usageError(env, "--help takes no arguments")
		}
		help(env.Stdout, env.Program)
		return host.ExitOK
	case "--version", "version":
		if len(args) != 1 {
			return usageError(env, "--version takes no arguments")
		}
		fmt.Fprintf(env.Stdout, "fdbhook %s\n", version.Version)
		return host.ExitOK
	}
	c := find(args[0])
	if c == nil {
		return usageError(env, fmt.Sprintf("unknown command %q", args[0]))
	}
	if len(args) == 2 && (args[1] == "--help" || args[1] == "-h") {
		fmt.Fprintf(env.Stdout, c.Usage, env.Program)
		return host.ExitOK
	}
	return c.Run(env, args[1:])
}

// buffered returns a copy of e whose Stdout is buffered, and the function
// that flushes it. A report can run to thousands of lines (one per FDB
// entry): it goes out through one buffer instead of a syscall per
// fragment. A command that runs on (a watcher) writes unbuffered.
func (e *Env) buffered() (*Env, func()) {
	out := bufio.NewWriterSize(e.Stdout, 64<<10)
	be := *e
	be.Stdout = out
	return &be, func() { out.Flush() }
}

func find(name string) *Command {
	for i := range Commands {
		if Commands[i].Name == name {
			return &Commands[i]
		}
	}
	return nil
}

// usageError prints why the command line is wrong and the usage, and
// returns the exit code for a bad command line.
func usageError(env *Env, why string) int {
	fmt.Fprintf(env.Stderr, "%s: %s\n\n", env.Program, why)
	synopsis(env.Stderr, env.Program)
	fmt.Fprintf(env.Stderr, "\nSee '%s --help' and '%s COMMAND --help'.\n", env.Program, env.Program)
	return host.ExitUsage
}

// commandError prints a command's usage error in one line and returns the
// exit code for a bad command line.
func commandError(env *Env, command, why string) int {
	fmt.Fprintf(env.Stderr, "%s: %s: %s; see '%s %s --help'\n", env.Program, command, why, env.Program, command)
	return host.ExitUsage
}

func synopsis(w io.Writer, program string) {
	fmt.Fprintf(w, "Usage:\n")
	for _, c := range Commands {
		first, _, _ := strings.Cut(fmt.Sprintf(c.Usage, program), "\n")
		fmt.Fprintf(w, "  %s\n", strings.TrimPrefix(first, "Usage: "))
	}
	fmt.Fprintf(w, "  %s --help | --version\n", program)
}

func help(w io.Writer, program string) {
	synopsis(w, program)
	fmt.Fprint(w, helpIntro)
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	for _, c := range Commands {
		fmt.Fprintf(tw, "  %s\t%s\n", c.Name, c.Summary)
	}
	tw.Flush()
	fmt.Fprintf(w, helpOutro, program)
}

const helpIntro = `
fdbhook keeps a Linux bridge's MAC table (FDB) in step with the libvirt
guests on it. Its libvirt hooks (/etc/libvirt/hooks/qemu.d/fdbhook and
network.d/fdbhook) turn off learning and unicast flooding on each managed
guest tap at guest start and add a static FDB entry for the guest's MAC on
that tap; at guest stop they remove what is left. This command is for the
admin: it shows what the hooks did, checks the host, brings guests that were
already running under management, and explains what a start would do.

Commands:
`

const helpOutro = `
Each command's own --help says more: '%[1]s status --help'.

Examples:
  %[1]s doctor                          would fdbhook work on this host?
  %[1]s reconcile --dry-run             what would bring running guests under management
  %[1]s reconcile                       ... and do it
  %[1]s status br0 --json               one bridge, for monitoring
  virsh dumpxml web1 | %[1]s explain -  what web1's next start would do

status, doctor and reconcile read the kernel, the configuration and
libvirt's files under /run/libvirt and /etc/libvirt; none of them calls the
libvirt API. Only reconcile changes anything, and it takes the hooks' lock.

Environment:
  FDBHOOK_CONFIG      configuration file (default /etc/fdbhook/fdbhook.toml)
  FDBHOOK_DRY_RUN=1   as --dry-run for reconcile
  FDBHOOK_LIBVIRT_RUN libvirt's run directory (default /run/libvirt:
                      qemu/*.xml, network/*.xml)
  FDBHOOK_LIBVIRT_ETC libvirt's configuration directory (default
                      /etc/libvirt: qemu/*.xml, qemu/networks/*.xml, hooks/)

Exit codes:
  0  done, nothing found
  1  a problem was found (status), a check failed (doctor), a guest could
     not be managed (reconcile), a NIC would be refused (explain)
  2  bad command line
  3  bad configuration file
  4  bad input (explain: unreadable or malformed XML)

The hooks themselves are /usr/libexec/fdbhook/qemu-hook and network-hook;
see their --help and fdbhook(8).
`
