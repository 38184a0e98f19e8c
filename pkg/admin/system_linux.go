package admin

import (
	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/logline"
	"github.com/fdbhook/fdbhook/pkg/runstate"

	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Uname returns the running kernel's release and machine.
func Uname() (release, machine string, err error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", "", err
	}
	return unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:]), nil
}

// sbinPath is searched for libvirt's daemons and package tools, whatever
// the caller's PATH.
var sbinPath = []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin"}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range sbinPath {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && executable(fi) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// output runs a program with a short timeout and returns its stdout.
func output(name string, args ...string) (string, error) {
	p, err := lookPath(name)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// LibvirtVersion asks libvirt's daemons for their version (libvirtd, then
// virtqemud), then the package manager. It never talks to a daemon.
func LibvirtVersion() (version, source string, err error) {
	for _, d := range []string{"libvirtd", "virtqemud"} {
		out, err := output(d, "--version")
		if err != nil {
			continue
		}
		// "libvirtd (libvirt) 9.0.0"
		if f := strings.Fields(out); len(f) > 0 && len(parseVersion(f[len(f)-1])) > 0 {
			return f[len(f)-1], d + " --version", nil
		}
	}
	for _, pkg := range []string{"libvirt-daemon", "libvirt-daemon-driver-qemu"} {
		if out, err := output("dpkg-query", "-W", "-f=${Version}", pkg); err == nil && out != "" {
			return out, "dpkg package " + pkg, nil
		}
		if out, err := output("rpm", "-q", "--qf", "%{VERSION}", pkg); err == nil && len(parseVersion(out)) > 0 {
			return out, "rpm package " + pkg, nil
		}
	}
	return "", "", errors.New("no libvirtd or virtqemud, and no libvirt-daemon package")
}

// libvirtDaemons are the daemons that run hooks.
var libvirtDaemons = []string{"libvirtd", "virtqemud", "virtnetworkd", "virtlxcd"}

// userHZ is the unit of /proc/PID/stat's start time. It is 100 on every
// Linux architecture fdbhook is built for.
const userHZ = 100

// Daemons lists the running libvirt daemons of this host, when each
// started (from /proc) and when the package last reloaded it (from the run
// directory). A daemon that sees another /etc/libvirt than this process
// (a container's, a test's private libvirt with its own hook directories)
// is left out; one in another mount namespace that shares it (as under
// "ip netns exec") is not. run is the run directory of the reload records.
func Daemons(run runstate.Dir) ([]Daemon, error) { return daemonsIn(run) }

// libvirtEtc is the directory whose identity tells a daemon of this host:
// libvirt's configuration directory as this process sees it.
const libvirtEtc = host.DefaultLibvirtEtc

// fileID is a file's device and inode: what tells two paths to one file.
func fileID(path string) (id [2]uint64, ok bool) {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return id, false
	}
	return [2]uint64{uint64(st.Dev), st.Ino}, true
}

func daemonsIn(run runstate.Dir) ([]Daemon, error) {
	boot, err := bootTime()
	if err != nil {
		return nil, err
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	own, haveOwn := fileID(libvirtEtc) // once: every daemon is compared with it
	var out []Daemon
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		if !slices.Contains(libvirtDaemons, name) {
			continue
		}
		if id, ok := fileID(filepath.Join("/proc", p.Name(), "root", libvirtEtc)); haveOwn && (!ok || id != own) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			continue
		}
		ticks, err := startTicks(stat)
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		started := boot.Add(time.Duration(ticks) * time.Second / userHZ)
		d := Daemon{Name: name, PID: pid, Started: started}
		if rpid, at, ok := run.Reload(name); ok && rpid == pid {
			d.Reloaded = at
		}
		out = append(out, d)
	}
	return out, nil
}

// startTicks returns field 22 (starttime) of a /proc/PID/stat line. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted after its last ')'.
func startTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, errors.New("too few fields")
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func bootTime() (time.Time, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("/proc/stat btime: %w", err)
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, errors.New("/proc/stat has no btime")
}

// Identify tells whether the file at p is one of fdbhook's programs, from
// the Go build information in the binary (never by running an unknown
// file); only a program so identified is run, with --version.
func Identify(p string) (program, version string) {
	bi, err := buildinfo.ReadFile(p)
	if err != nil || !strings.HasPrefix(bi.Path, "github.com/fdbhook/fdbhook/cmd/") {
		return "", ""
	}
	program = path.Base(bi.Path)
	out, err := output(p, "--version")
	if err != nil {
		return program, ""
	}
	// "qemu-hook (fdbhook) 1.2.3"
	if f := strings.Fields(out); len(f) >= 3 && f[1] == "(fdbhook)" {
		version = f[2]
	}
	return program, version
}

// lxcControllers are where distributions install libvirt's LXC controller,
// libvirt_lxc: Debian's libvirt-daemon-driver-lxc, and Fedora's and RHEL's.
var lxcControllers = []string{"/usr/lib/libvirt/libvirt_lxc", "/usr/libexec/libvirt_lxc"}

// LxcDriverInstalled reports whether libvirt's LXC driver is installed.
func LxcDriverInstalled() bool {
	for _, p := range lxcControllers {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// SyslogReachable reports whether the system log can be reached, as the
// hooks and the watcher reach it (/dev/log).
func SyslogReachable() error {
	h, err := logline.Syslog("fdbhook")
	if err != nil {
		return err
	}
	return h.Writer.Close()
}
