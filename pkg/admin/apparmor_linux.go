package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// AppArmor asks the kernel whether a process's AppArmor profile lets it
// execute a file, rather than reading profiles: the process's label from
// /proc/PID/attr, then the label query of AppArmor's filesystem (.access,
// what libapparmor's aa_query_label writes), answered from the policy the
// kernel enforces. Proc and Sys are where /proc and /sys are (tests point
// them at fakes); Query runs one query (nil: the kernel's, a write and a
// read on one descriptor of .access).
type AppArmor struct {
	Proc, Sys string
	// Sbin is where libvirt's daemons are installed: a daemon that is not
	// running is judged only when its program is there.
	Sbin  string
	Query func(access string, query []byte) ([]byte, error)
}

// HostAppArmor reads this host's /proc and /sys.
var HostAppArmor = AppArmor{Proc: "/proc", Sys: "/sys", Sbin: "/usr/sbin"}

// From the kernel's security/apparmor: the class of file rules in a
// query (AA_CLASS_FILE) and the permission bit to execute (MAY_EXEC).
const (
	aaClassFile = 2
	aaMayExec   = 0x1
)

// HostExecPolicy is the ExecPolicy of this host: statfs(2) for noexec
// mounts, AppArmor for the daemons' profiles.
func HostExecPolicy() ExecPolicy { return hostPolicy{HostAppArmor} }

type hostPolicy struct{ AppArmor }

func (hostPolicy) NoExec(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Flags&unix.ST_NOEXEC != 0, nil
}

// Exec says whether daemon name (pid; 0 when it is not running) may
// execute path under AppArmor.
func (a AppArmor) Exec(name string, pid int, path string) ExecVerdict {
	if !a.enabled() {
		return ExecVerdict{}
	}
	label, err := a.label(name, pid)
	if err != nil || label == "" {
		return ExecVerdict{Err: err}
	}
	v := ExecVerdict{Label: label}
	profile, mode := splitLabel(label)
	v.Enforced = mode == "enforce" || mode == "kill"
	v.Allowed, v.Err = a.mayExec(profile, path)
	return v
}

// enabled reports whether AppArmor runs on this kernel.
func (a AppArmor) enabled() bool {
	data, err := os.ReadFile(filepath.Join(a.Sys, "module/apparmor/parameters/enabled"))
	return err == nil && strings.TrimSpace(string(data)) == "Y"
}

func (a AppArmor) fs() string { return filepath.Join(a.Sys, "kernel/security/apparmor") }

// label returns what confines daemon name: the running process's label, or
// for a daemon that is not running, a loaded profile named after it
// (libvirt's profiles are named "libvirtd", older ones "/usr/sbin/libvirtd").
// It is empty when nothing confines the daemon.
func (a AppArmor) label(name string, pid int) (string, error) {
	if pid > 0 {
		dir := filepath.Join(a.Proc, strconv.Itoa(pid), "attr")
		data, err := os.ReadFile(filepath.Join(dir, "apparmor", "current"))
		if errors.Is(err, fs.ErrNotExist) { // kernels before 5.8
			data, err = os.ReadFile(filepath.Join(dir, "current"))
		}
		if err != nil {
			return "", fmt.Errorf("reading the label of %s: %w", name, err)
		}
		label := strings.TrimSpace(strings.TrimRight(string(data), "\x00"))
		if label == "unconfined" {
			return "", nil
		}
		return label, nil
	}
	if _, err := os.Stat(filepath.Join(a.Sbin, name)); err != nil {
		return "", nil // not installed here
	}
	data, err := os.ReadFile(filepath.Join(a.fs(), "profiles"))
	if err != nil {
		return "", fmt.Errorf("listing AppArmor's profiles: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, _ := splitLabel(line); p == name || p == filepath.Join(a.Sbin, name) {
			return strings.TrimSpace(line), nil
		}
	}
	return "", nil
}

// splitLabel splits "libvirtd (enforce)" into the profile and its mode.
func splitLabel(label string) (profile, mode string) {
	label = strings.TrimSpace(label)
	if i := strings.LastIndex(label, " ("); i >= 0 && strings.HasSuffix(label, ")") {
		return label[:i], label[i+2 : len(label)-1]
	}
	return label, ""
}

// mayExec asks the kernel whether profile may execute path: the query is
// "label\0PROFILE\0" followed by the file class and the path, the answer
// "allow 0x… deny 0x… audit 0x… quiet 0x…" (apparmorfs.c, query_label).
func (a AppArmor) mayExec(profile, path string) (bool, error) {
	access := filepath.Join(a.fs(), ".access")
	if _, err := os.Stat(access); err != nil {
		return false, fmt.Errorf("this kernel has no AppArmor query interface (%w)", err)
	}
	q := append([]byte("label\x00"+profile+"\x00"), aaClassFile)
	q = append(q, path...)
	query := a.Query
	if query == nil {
		query = kernelQuery
	}
	answer, err := query(access, q)
	if err != nil {
		return false, fmt.Errorf("querying %s: %w", access, err)
	}
	perms := map[string]uint64{}
	for _, line := range strings.Split(string(answer), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			if n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 32); err == nil {
				perms[k] = n
			}
		}
	}
	allow, okA := perms["allow"]
	deny, okD := perms["deny"]
	if !okA || !okD {
		return false, fmt.Errorf("unexpected answer from %s: %q", access, answer)
	}
	return allow&aaMayExec != 0 && deny&aaMayExec == 0, nil
}

// kernelQuery writes query to AppArmor's .access and reads the answer back
// on the same descriptor.
func kernelQuery(access string, query []byte) ([]byte, error) {
	f, err := os.OpenFile(access, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Write(query); err != nil {
		return nil, err
	}
	buf := make([]byte, 512)
	n, err := f.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf[:n], "\x00"), nil
}
