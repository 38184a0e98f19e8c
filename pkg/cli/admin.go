package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/manage"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/version"
)

const statusUsage = `Usage: %[1]s status [BRIDGE...] [--json]
For each managed bridge (or the ones named): its vlan_filtering, every port
with its kind (guest tap, uplink, other), learning, flood and locked flags
and promiscuity, every static FDB entry with the guest and NIC it belongs
to, and problems in plain words: a managed guest port still learning or
flooding, a managed MAC without its entry, a stale entry, an uplink kept
promiscuous and why. Reads the kernel, the configuration and libvirt's
files; changes nothing. Exit status 1 when a problem is found.
  --json   machine-readable output, for monitoring
`

const doctorUsage = `Usage: %[1]s doctor
Checks whether fdbhook works on this host: kernel capabilities (tried on a
throwaway bridge in a private network namespace), libvirt version, hooks
installed and executable where libvirt runs them, whether the daemon needs
a restart to see them, the configuration and its permissions, and the
configured bridges. One line per check: ok, warn or fail, with what to do.
Exit status 1 when a check fails.
`

const reconcileUsage = `Usage: %[1]s reconcile [--dry-run]
Gives every running guest (/run/libvirt/qemu/*.xml) what its start would
have, all or nothing per guest, and removes stale static entries on managed
bridges (on taps no running guest owns, and on uplinks for MACs of defined
guests that are not running). Entries it cannot attribute are reported,
never deleted. For guests that were running before fdbhook was installed or
reconfigured. Takes the hooks' lock. Exit status 1 when a guest could not
be managed.
  --dry-run, -n   print what would change, change nothing
`

// fail prints err in one line and returns its exit code.
func (e *Env) fail(err error) int {
	fmt.Fprintf(e.Stderr, "fdbhook: %v\n", err)
	return host.ExitCode(err)
}

// state opens the kernel connection and reads the configuration, the
// kernel and libvirt's files. The caller calls done to close the
// connection; on error it is already closed and done is nil.
func (e *Env) state() (st *manage.State, k model.Kernel, done func(), err error) {
	if k, err = e.OpenKernel(); err != nil {
		return nil, nil, nil, err
	}
	if st, err = e.readState(k); err != nil {
		k.Close()
		return nil, nil, nil, err
	}
	return st, k, k.Close, nil
}

// hookChecks are the checks of the installed hooks, for a report
// (status, the metrics); none when the Env has no HookChecks.
func (e *Env) hookChecks() []admin.Check {
	if e.HookChecks == nil {
		return nil
	}
	return e.HookChecks(e.Host)
}

func (e *Env) readState(k model.Kernel) (*manage.State, error) {
	cfg, err := e.LoadConfig()
	if err != nil {
		return nil, err
	}
	live, err := manage.ReadLive(e.Libvirt)
	if err != nil {
		return nil, err
	}
	st, err := manage.ReadState(e.Host, cfg, k, live, e.Clock())
	if err != nil {
		return nil, err
	}
	if _, err := st.Definitions(); err != nil { // now: their notes come first
		return nil, err
	}
	return st, nil
}

func status(e *Env, args []string) int {
	e, flush := e.buffered()
	defer flush()
	var only []string
	asJSON := false
	for _, a := range args {
		switch {
		case a == "--json":
			asJSON = true
		case strings.HasPrefix(a, "-") || config.ValidIfName(a) != nil:
			return commandError(e, "status", fmt.Sprintf("unexpected %q", a))
		default:
			only = append(only, a)
		}
	}
	st, _, done, err := e.state()
	if err != nil {
		return e.fail(err)
	}
	defer done()
	rep, err := admin.Status(st, e.hookChecks(), only)
	if err != nil {
		return e.fail(err)
	}
	rep.Watcher = watcherReport(e)
	if asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return e.fail(err)
		}
	} else {
		rep.Format(e.Stdout)
	}
	if len(rep.Problems) > 0 {
		return host.ExitRefused
	}
	return host.ExitOK
}

func reconcile(e *Env, args []string) int {
	e, flush := e.buffered()
	defer flush()
	dry := e.DryRun
	for _, a := range args {
		switch a {
		case "--dry-run", "-n":
			dry = true
		default:
			return commandError(e, "reconcile", fmt.Sprintf("unexpected %q", a))
		}
	}
	if !dry {
		// The same lock as hook runs: a guest starting meanwhile waits,
		// and is seen by the snapshot or sees what reconcile did.
		unlock, err := e.TakeLock(context.Background())
		if err != nil {
			e.recordReconcile(dry, nil, err)
			return e.fail(err)
		}
		defer unlock()
	}
	st, k, done, err := e.state()
	if err != nil {
		e.recordReconcile(dry, nil, err)
		return e.fail(err)
	}
	defer done()
	for _, n := range st.Notes {
		fmt.Fprintf(e.Stdout, "note: %s\n", n)
	}
	if !st.Config.Present || st.Config.Empty() {
		fmt.Fprintf(e.Stdout, "note: %s lists no bridges or networks: nothing is managed\n", st.Config.Path)
	}
	res, err := manage.Reconcile(st, k, dry)
	e.recordReconcile(dry, res, err)
	if err != nil {
		return e.fail(err)
	}
	admin.FormatResult(e.Stdout, res)
	if !dry {
		removed, errs := manage.SettleMarks(e.RunDir, st, res, e.Clock())
		for _, line := range removed {
			fmt.Fprintln(e.Stdout, line)
		}
		for _, err := range errs {
			fmt.Fprintf(e.Stderr, "%s: %v\n", e.Program, err)
		}
	}
	if res.Failed > 0 {
		return host.ExitRefused
	}
	return host.ExitOK
}

// recordReconcile records the outcome of a reconcile that was not a dry
// run (manage.RecordReconcile).
func (e *Env) recordReconcile(dry bool, res *manage.Result, err error) {
	if dry {
		return
	}
	if werr := manage.RecordReconcile(e.RunDir, res, err, e.Clock()); werr != nil {
		fmt.Fprintf(e.Stderr, "%s: warning: recording the reconcile: %v\n", e.Program, werr)
	}
}

// definedGuests reads the guests libvirt has defined, of both drivers
// (doctor asks whose metadata wants undeclared_macs = "report").
func (e *Env) definedGuests() ([]*guest.Guest, error) {
	gs, _, err := manage.ReadDefined(filepath.Join(e.LibvirtEtc, "qemu"), filepath.Join(e.LibvirtEtc, "lxc"))
	return gs, err
}

func doctor(e *Env, args []string) int {
	if len(args) > 0 {
		return commandError(e, "doctor", "it takes no arguments")
	}
	k, err := kernel.Open(netns.None(), kernel.DefaultTimeout)
	if err != nil {
		return e.fail(err)
	}
	defer k.Close()
	checks := admin.Doctor(&admin.System{
		ConfigPath:     e.Config,
		HooksDir:       e.HooksDir(),
		Networks:       libvirt.New(e.Libvirt),
		Links:          k.Links,
		PortVlans:      k.PortVlans,
		Uname:          admin.Uname,
		Probe:          func() admin.Probe { return admin.ProbeKernel(kernel.DefaultTimeout) },
		LibvirtVersion: admin.LibvirtVersion,
		Daemons:        func() ([]admin.Daemon, error) { return admin.Daemons(e.RunDir) },
		HooksSince:     e.RunDir.HooksSince,
		LxcDriver:      admin.LxcDriverInstalled,
		Exec:           admin.HostExecPolicy(),
		Identify:       admin.Identify,
		Syslog:         admin.SyslogReachable,
		Guests:         e.definedGuests,
		Version:        version.Version,
	})
	checks = append(checks, watcherCheck(watcherReport(e)))
	admin.FormatChecks(e.Stdout, checks)
	if admin.Failed(checks) {
		return host.ExitRefused
	}
	return host.ExitOK
}
