package admin

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// ExecPolicy says what, beyond a file's mode bits, keeps a libvirt daemon
// from executing it: a filesystem mounted noexec, or the daemon's AppArmor
// profile. HostExecPolicy asks this host; tests use fakes.
type ExecPolicy interface {
	// NoExec reports whether the file at path lies on a filesystem
	// mounted noexec.
	NoExec(path string) (bool, error)
	// Exec says whether the daemon called name, running as pid (0: not
	// running, judged by the profile it would start under), may execute
	// the file at path, a name with every link resolved.
	Exec(name string, pid int, path string) ExecVerdict
}

// ExecVerdict is a security module's answer for one daemon and one file.
type ExecVerdict struct {
	// Label is what confines the daemon, as the kernel shows it
	// ("libvirtd (enforce)"); empty when nothing does.
	Label string
	// Allowed is whether the label lets the daemon execute the file.
	Allowed bool
	// Enforced is whether a denial is enforced (enforce or kill mode)
	// rather than only logged (complain mode).
	Enforced bool
	// Err says why the question could not be answered.
	Err error
}

// execChecks asks whether the daemons that run h's hooks can execute the
// hook at path, an executable regular file: the mount it is on, and each
// daemon's confinement. A daemon that is not running is judged by the
// profile it would start under: Debian's libvirtd exits when idle and its
// socket starts it again.
func execChecks(pol ExecPolicy, h hookSpec, path string, daemons []Daemon) []Check {
	name := h.driver + " hook"
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return []Check{{Fail, name, fmt.Sprintf("%s: %v", path, err)}}
	}
	shown := path
	if target != path {
		shown = path + " -> " + target
	}
	if noexec, err := pol.NoExec(target); err != nil {
		return []Check{{Warn, name, fmt.Sprintf("could not check the mount of %s: %v", target, err)}}
	} else if noexec {
		return []Check{{Fail, name, fmt.Sprintf("%s is on a filesystem mounted noexec: libvirt cannot execute it and every %s start fails with exit status 126",
			shown, h.object)}}
	}
	var out []Check
	for _, d := range h.daemons {
		pid := 0
		if i := slices.IndexFunc(daemons, func(r Daemon) bool { return r.Name == d }); i >= 0 {
			pid = daemons[i].PID
		}
		if c, ok := confinementCheck(pol.Exec(d, pid, target), h, name, shown, target, d, pid); ok {
			out = append(out, c)
		}
	}
	return out
}

// confinementCheck turns one daemon's verdict into a check; ok is false
// when nothing confines the daemon.
func confinementCheck(v ExecVerdict, h hookSpec, name, shown, target, daemon string, pid int) (c Check, ok bool) {
	who := fmt.Sprintf("%s (pid %d)", daemon, pid)
	if pid == 0 {
		who = daemon + " (not running: the profile it starts under)"
	}
	switch {
	case v.Err != nil:
		return Check{Warn, name, fmt.Sprintf("could not check whether AppArmor lets %s execute %s: %v", who, shown, v.Err)}, true
	case v.Label == "":
		return Check{}, false
	case v.Allowed:
		return Check{OK, name, fmt.Sprintf("AppArmor profile %s of %s lets it execute %s", v.Label, who, target)}, true
	case !v.Enforced:
		return Check{Warn, name, fmt.Sprintf("AppArmor profile %s of %s does not let it execute %s: only logged in this mode, in enforce mode every %s start would fail",
			v.Label, who, target, h.object)}, true
	}
	return Check{Fail, name, fmt.Sprintf("AppArmor profile %s of %s does not let it execute %s (a link is judged by its target): every %s start fails with exit status 126; the hook must be a regular file under /etc/libvirt/hooks (reinstall a current fdbhook package)",
		v.Label, who, shown, h.object)}, true
}

// HookExecChecks checks the hooks the package installs in hooksDir
// (DRIVER.d/fdbhook) for what keeps libvirt from running them: a broken
// link, a file that is not executable, a noexec mount, a daemon's AppArmor
// profile. A hook that is not there is not checked (doctor says what is
// missing); the lxc hook only when libvirt's LXC driver is installed.
// status and the metrics report the failures.
func HookExecChecks(hooksDir string, daemons []Daemon, pol ExecPolicy, lxc bool) []Check {
	var out []Check
	for _, h := range hookSpecs {
		if h.driver == "lxc" && !lxc {
			continue
		}
		path := filepath.Join(hooksDir, h.driver+".d", "fdbhook")
		if _, err := os.Lstat(path); err != nil {
			continue
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			target, _ := os.Readlink(path)
			out = append(out, Check{Fail, h.driver + " hook", brokenLink(path, target)})
		case !executable(fi):
			out = append(out, Check{Fail, h.driver + " hook", notExecutable(path)})
		default:
			out = append(out, execChecks(pol, h, path, daemons)...)
		}
	}
	return out
}

func brokenLink(path, target string) string {
	return fmt.Sprintf("%s is a broken link to %s: reinstall fdbhook", path, target)
}

func notExecutable(path string) string {
	return fmt.Sprintf("%s is not an executable file: libvirt skips it (chmod 755 %s)", path, path)
}
