package cli

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/hook"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	"github.com/fdbhook/fdbhook/pkg/version"
)

// Environment variables that move libvirt's directories for the commands,
// so tests can give them a fake libvirt.
const (
	EnvLibvirtRun = "FDBHOOK_LIBVIRT_RUN" // default /run/libvirt
	EnvLibvirtEtc = "FDBHOOK_LIBVIRT_ETC" // default /etc/libvirt
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

// libvirtPaths returns libvirt's paths: the Env's, unless the environment
// moves them.
func (e *Env) libvirtPaths() (paths libvirt.Paths, etc string) {
	run, etc := e.Getenv(EnvLibvirtRun), e.Getenv(EnvLibvirtEtc)
	if run == "" && etc == "" {
		return e.Libvirt, "/etc/libvirt"
	}
	if run == "" {
		run = "/run/libvirt"
	}
	if etc == "" {
		etc = "/etc/libvirt"
	}
	return libvirt.Paths{
		NetworkDirs: []string{filepath.Join(run, "network"), filepath.Join(etc, "qemu", "networks")},
		QemuRunDir:  filepath.Join(run, "qemu"),
		LxcRunDir:   filepath.Join(run, "lxc"),
		ProcDir:     libvirt.DefaultPaths.ProcDir,
	}, etc
}

// fail prints err in one line and returns its exit code.
func (e *Env) fail(err error) int {
	fmt.Fprintf(e.Stderr, "fdbhook: %v\n", err)
	return hook.ExitCode(err)
}

// state opens the kernel connection and reads the configuration, the
// kernel and libvirt's files. The caller calls done to close the
// connection; on error it is already closed and done is nil.
func (e *Env) state() (st *admin.State, k model.Kernel, done func(), err error) {
	if k, err = e.OpenKernel(); err != nil {
		return nil, nil, nil, err
	}
	if st, err = e.readState(k); err != nil {
		k.Close()
		return nil, nil, nil, err
	}
	return st, k, k.Close, nil
}

func (e *Env) readState(k model.Kernel) (*admin.State, error) {
	cfg, err := hook.LoadConfig(e.Getenv)
	if err != nil {
		return nil, err
	}
	paths, etc := e.libvirtPaths()
	snap, err := admin.Take(k)
	if err != nil {
		return nil, err
	}
	st := &admin.State{Config: cfg, Kernel: snap, Networks: libvirt.New(paths)}
	var notes []string
	st.Running, st.RunningComplete, notes, err = admin.ReadGuests(paths.QemuRunDir)
	if err != nil {
		return nil, err
	}
	st.Incoming = admin.IncomingGuests(st.Running)
	st.Notes = append(st.Notes, notes...)
	st.Defined, _, notes, err = admin.ReadGuests(filepath.Join(etc, "qemu"))
	if err != nil {
		return nil, err
	}
	st.Notes = append(st.Notes, notes...)
	if err := readContainers(st, k, paths, etc); err != nil {
		return nil, err
	}
	return st, nil
}

// readContainers adds the running and defined containers of libvirt's LXC
// driver to st, with what proves each running one's veths its own.
func readContainers(st *admin.State, k model.Reader, paths libvirt.Paths, etc string) error {
	running, complete, notes, err := admin.ReadGuests(paths.LxcRunDir)
	if err != nil {
		return err
	}
	st.Notes = append(st.Notes, notes...)
	st.RunningComplete = st.RunningComplete && complete
	for _, g := range running {
		g.Type = "lxc" // whatever its XML says: it runs under the LXC driver
	}
	st.Containers = hook.Containers(running, hook.PlanView{Reader: k, Files: libvirt.New(paths)})
	st.Running = append(st.Running, running...)
	slices.SortFunc(st.Running, func(a, b *guest.Guest) int { return strings.Compare(a.Name, b.Name) })
	defined, _, notes, err := admin.ReadGuests(filepath.Join(etc, "lxc"))
	if err != nil {
		return err
	}
	st.Notes = append(st.Notes, notes...)
	st.Defined = append(st.Defined, defined...)
	return nil
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
	rep, err := admin.Status(st, only)
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
		return hook.ExitRefused
	}
	return hook.ExitOK
}

func reconcile(e *Env, args []string) int {
	e, flush := e.buffered()
	defer flush()
	dry := hook.DryRun(e.Getenv)
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
		unlock, err := hook.Lock(e.LockPath, e.LockTimeout)
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
	res, err := admin.Reconcile(st, k, dry)
	e.recordReconcile(dry, res, err)
	if err != nil {
		return e.fail(err)
	}
	res.Format(e.Stdout)
	if !dry {
		settleMarks(e, st, res)
	}
	if res.Failed > 0 {
		return hook.ExitRefused
	}
	return hook.ExitOK
}

// recordReconcile writes the outcome of a reconcile that was not a dry run
// to the run directory, where the metrics read the last one.
func (e *Env) recordReconcile(dry bool, res *admin.Result, err error) {
	if dry || e.RunDir == "" {
		return
	}
	rec := runstate.Reconcile{Time: time.Now()}
	if res != nil {
		rec.Guests, rec.Failed = len(res.Guests), res.Failed
	}
	if err != nil {
		rec.Err = err.Error()
	}
	if werr := e.RunDir.PutReconcile(rec); werr != nil {
		fmt.Fprintf(e.Stderr, "%s: warning: recording the reconcile: %v\n", e.Program, werr)
	}
}

func doctor(e *Env, args []string) int {
	if len(args) > 0 {
		return commandError(e, "doctor", "it takes no arguments")
	}
	paths, etc := e.libvirtPaths()
	k, err := kernel.Open(netns.None(), kernel.DefaultTimeout)
	if err != nil {
		return e.fail(err)
	}
	defer k.Close()
	checks := admin.Doctor(&admin.System{
		ConfigPath:     config.PathFromEnv(e.Getenv),
		HooksDir:       filepath.Join(etc, "hooks"),
		Networks:       libvirt.New(paths),
		Links:          k.Links,
		Uname:          admin.Uname,
		Probe:          func() admin.Probe { return admin.ProbeKernel(kernel.DefaultTimeout) },
		LibvirtVersion: admin.LibvirtVersion,
		Daemons:        admin.Daemons,
		LxcDriver:      admin.LxcDriverInstalled,
		Identify:       admin.Identify,
		Syslog:         admin.SyslogReachable,
		Version:        version.Version,
	})
	checks = append(checks, watcherCheck(watcherReport(e)))
	admin.FormatChecks(e.Stdout, checks)
	if admin.Failed(checks) {
		return hook.ExitRefused
	}
	return hook.ExitOK
}
