package hook

import (
	"bufio"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/vishvananda/netns"

	"github.com/fdbhook/fdbhook/pkg/admin"
	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	"github.com/fdbhook/fdbhook/pkg/version"
)

// Environment variables that move libvirt's directories for the admin
// commands (status, doctor, reconcile), so tests can give them a fake
// libvirt. Hook mode ignores them.
const (
	EnvLibvirtRun = "FDBHOOK_LIBVIRT_RUN" // default /run/libvirt
	EnvLibvirtEtc = "FDBHOOK_LIBVIRT_ETC" // default /etc/libvirt
)

// adminCommand runs the admin commands; handled is false for any other
// command.
func (r *Runner) adminCommand(args []string) (code int, handled bool) {
	// A report can run to thousands of lines (one per FDB entry): write it
	// through one buffer instead of a syscall per fragment.
	out := bufio.NewWriterSize(r.Stdout, 64<<10)
	stdout := r.Stdout
	r.Stdout = out
	defer func() {
		out.Flush()
		r.Stdout = stdout
	}()
	if help, ok := adminHelp[args[0]]; ok && len(args) == 2 && (args[1] == "--help" || args[1] == "-h") {
		fmt.Fprintf(r.Stdout, help, r.Program)
		return ExitOK, true
	}
	switch args[0] {
	case "status":
		return r.status(args[1:]), true
	case "doctor":
		return r.doctor(args[1:]), true
	case "reconcile":
		return r.reconcile(args[1:]), true
	}
	return 0, false
}

// adminHelp is each admin command's --help.
var adminHelp = map[string]string{
	"status": `Usage: %[1]s status [BRIDGE...] [--json]

For each managed bridge (or the ones named): its vlan_filtering, every port
with its kind (guest tap, uplink, other), learning, flood and locked flags
and promiscuity, every static FDB entry with the guest and NIC it belongs
to, and problems in plain words. Reads the kernel, the configuration and
libvirt's files; changes nothing. Exit status 1 when a problem is found.
  --json   machine-readable output, for monitoring
`,
	"doctor": `Usage: %[1]s doctor

Checks whether fdbhook works on this host: kernel capabilities (tried on a
throwaway bridge in a private network namespace), libvirt version, hooks
installed and executable where libvirt runs them, whether the daemon needs
a restart to see them, the configuration and its permissions, and the
configured bridges. One line per check: ok, warn or fail, with what to do.
Exit status 1 when a check fails.
`,
	"reconcile": `Usage: %[1]s reconcile [--dry-run]

Gives every running guest (/run/libvirt/qemu/*.xml) what its start would
have, all or nothing per guest, and removes stale static entries on managed
bridges. For guests that were running before fdbhook was installed or
reconfigured. Exit status 1 when a guest could not be managed.
  --dry-run, -n   print what would change, change nothing
`,
}

// adminPaths returns libvirt's paths for the admin commands: the Runner's,
// unless the environment moves them.
func (r *Runner) adminPaths() (paths libvirt.Paths, etc string) {
	run, etc := r.Getenv(EnvLibvirtRun), r.Getenv(EnvLibvirtEtc)
	if run == "" && etc == "" {
		return r.Libvirt, "/etc/libvirt"
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
	}, etc
}

func (r *Runner) adminError(err error) int {
	fmt.Fprintf(r.Stderr, "fdbhook: %v\n", err)
	return exitCode(err)
}

// openAdminKernel opens the Runner's kernel connection for the admin
// commands, which also dump every device through it.
func (r *Runner) openAdminKernel() (admin.Kernel, func(), error) {
	k, err := r.OpenKernel()
	if err != nil {
		return nil, nil, err
	}
	ak, ok := k.(admin.Kernel)
	if !ok {
		k.Close()
		return nil, nil, fmt.Errorf("this kernel connection cannot dump links and FDBs")
	}
	return ak, k.Close, nil
}

// adminState opens the kernel connection and reads the configuration, the
// kernel and libvirt's files. The caller calls done to close the
// connection; on error it is already closed and done is nil.
func (r *Runner) adminState() (st *admin.State, k admin.Kernel, done func(), err error) {
	k, done, err = r.openAdminKernel()
	if err != nil {
		return nil, nil, nil, err
	}
	if st, err = r.readAdminState(k); err != nil {
		done()
		return nil, nil, nil, err
	}
	return st, k, done, nil
}

func (r *Runner) readAdminState(k admin.Kernel) (*admin.State, error) {
	cfg, err := r.loadConfig()
	if err != nil {
		return nil, err
	}
	paths, etc := r.adminPaths()
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
	st.Notes = append(st.Notes, notes...)
	st.Defined, _, notes, err = admin.ReadGuests(filepath.Join(etc, "qemu"))
	if err != nil {
		return nil, err
	}
	st.Notes = append(st.Notes, notes...)
	return st, nil
}

func (r *Runner) status(args []string) int {
	var only []string
	asJSON := false
	for _, a := range args {
		switch {
		case a == "--json":
			asJSON = true
		case strings.HasPrefix(a, "-") || config.ValidIfName(a) != nil:
			fmt.Fprintf(r.Stderr, "%s: status: unexpected %q; usage: status [BRIDGE...] [--json]\n", r.Program, a)
			return ExitUsage
		default:
			only = append(only, a)
		}
	}
	st, _, closeK, err := r.adminState()
	if err != nil {
		return r.adminError(err)
	}
	defer closeK()
	rep, err := admin.Status(st, only)
	if err != nil {
		return r.adminError(err)
	}
	if asJSON {
		enc := json.NewEncoder(r.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return r.adminError(err)
		}
	} else {
		rep.Format(r.Stdout)
	}
	if len(rep.Problems) > 0 {
		return ExitRefused
	}
	return ExitOK
}

func (r *Runner) reconcile(args []string) int {
	dry := dryRun(r.Getenv)
	for _, a := range args {
		switch a {
		case "--dry-run", "-n":
			dry = true
		default:
			fmt.Fprintf(r.Stderr, "%s: reconcile: unexpected %q; usage: reconcile [--dry-run]\n", r.Program, a)
			return ExitUsage
		}
	}
	if !dry {
		// The same lock as hook runs: a guest starting meanwhile waits,
		// and is seen by the snapshot or sees what reconcile did.
		unlock, err := r.lock()
		if err != nil {
			r.recordReconcile(dry, nil, err)
			return r.adminError(err)
		}
		defer unlock()
	}
	st, k, closeK, err := r.adminState()
	if err != nil {
		r.recordReconcile(dry, nil, err)
		return r.adminError(err)
	}
	defer closeK()
	for _, n := range st.Notes {
		fmt.Fprintf(r.Stdout, "note: %s\n", n)
	}
	if !st.Config.Present || st.Config.Empty() {
		fmt.Fprintf(r.Stdout, "note: %s lists no bridges or networks: nothing is managed\n", st.Config.Path)
	}
	res, err := admin.Reconcile(st, k, dry)
	r.recordReconcile(dry, res, err)
	if err != nil {
		return r.adminError(err)
	}
	res.Format(r.Stdout)
	if res.Failed > 0 {
		return ExitRefused
	}
	return ExitOK
}

// recordReconcile writes the outcome of a reconcile that was not a dry run
// to the run directory, where the metrics read the last one.
func (r *Runner) recordReconcile(dry bool, res *admin.Result, err error) {
	if dry || r.RunDir == "" {
		return
	}
	rec := runstate.Reconcile{Time: time.Now()}
	if res != nil {
		rec.Guests, rec.Failed = len(res.Guests), res.Failed
	}
	if err != nil {
		rec.Err = err.Error()
	}
	if werr := r.RunDir.PutReconcile(rec); werr != nil {
		fmt.Fprintf(r.Stderr, "%s: warning: recording the reconcile: %v\n", r.Program, werr)
	}
}

func (r *Runner) doctor(args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(r.Stderr, "%s: doctor takes no arguments\n", r.Program)
		return ExitUsage
	}
	paths, etc := r.adminPaths()
	k, err := kernel.Open(netns.None(), kernel.DefaultTimeout)
	if err != nil {
		return r.adminError(err)
	}
	defer k.Close()
	checks := admin.Doctor(&admin.System{
		ConfigPath:     config.PathFromEnv(r.Getenv),
		HooksDir:       filepath.Join(etc, "hooks"),
		Networks:       libvirt.New(paths),
		Links:          k.Links,
		Uname:          admin.Uname,
		Probe:          func() admin.Probe { return admin.ProbeKernel(kernel.DefaultTimeout) },
		LibvirtVersion: admin.LibvirtVersion,
		Daemons:        admin.Daemons,
		Identify:       admin.Identify,
		Version:        version.Version,
	})
	admin.FormatChecks(r.Stdout, checks)
	if admin.Failed(checks) {
		return ExitRefused
	}
	return ExitOK
}
