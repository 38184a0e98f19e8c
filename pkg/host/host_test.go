package host

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// TestDefaults: with no variable set, every path is where the packages
// install it.
func TestDefaults(t *testing.T) {
	h := Default()
	for _, c := range []struct{ what, got, want string }{
		{"config", h.Config, "/etc/fdbhook/fdbhook.toml"},
		{"run dir", string(h.RunDir), "/run/fdbhook"},
		{"lock", h.Lock, "/run/fdbhook/lock"},
		{"qemu run dir", h.Libvirt.QemuRunDir, "/run/libvirt/qemu"},
		{"lxc run dir", h.Libvirt.LxcRunDir, "/run/libvirt/lxc"},
		{"proc", h.Libvirt.ProcDir, "/proc"},
		{"hooks", h.HooksDir(), "/etc/libvirt/hooks"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if q, l := h.DefinedDirs(); q != "/etc/libvirt/qemu" || l != "/etc/libvirt/lxc" {
		t.Errorf("DefinedDirs = %q, %q", q, l)
	}
	if want := []string{"/run/libvirt/network", "/etc/libvirt/qemu/networks"}; !slices.Equal(h.Libvirt.NetworkDirs, want) {
		t.Errorf("network dirs %q, want %q", h.Libvirt.NetworkDirs, want)
	}
	if want := []string{"/run/libvirt/libvirt-sock", "/run/libvirt/virtqemud-sock"}; !slices.Equal(h.Sockets, want) {
		t.Errorf("sockets %q, want %q", h.Sockets, want)
	}
	if h.DryRun || h.LogLevel != "" || h.StderrKept || h.LockTimeout.Seconds() != 10 {
		t.Errorf("default host %+v", h)
	}
}

// TestEveryVariable: each FDBHOOK_* variable moves what it names, and
// only that; libvirt's run directory moves its sockets too, unless
// FDBHOOK_LIBVIRT_SOCK names one.
func TestEveryVariable(t *testing.T) {
	env := map[string]string{
		"FDBHOOK_CONFIG": "/t/c.toml", "FDBHOOK_RUN_DIR": "/t/run", "FDBHOOK_LOCK": "/t/lock",
		"FDBHOOK_LIBVIRT_RUN": "/t/lr", "FDBHOOK_LIBVIRT_ETC": "/t/le",
		"FDBHOOK_DRY_RUN": "1", "FDBHOOK_LOG_LEVEL": "debug", "JOURNAL_STREAM": "8:1",
	}
	h := FromEnv(func(k string) string { return env[k] })
	got := fmt.Sprint(h.Config, h.RunDir, h.Lock, h.Libvirt.QemuRunDir, h.Libvirt.LxcRunDir, h.HooksDir(), h.Sockets, h.DryRun, h.LogLevel, h.StderrKept)
	want := fmt.Sprint("/t/c.toml", "/t/run", "/t/lock", "/t/lr/qemu", "/t/lr/lxc", "/t/le/hooks",
		[]string{"/t/lr/libvirt-sock", "/t/lr/virtqemud-sock"}, true, "debug", true)
	if got != want {
		t.Errorf("host\n %s\nwant\n %s", got, want)
	}
	env["FDBHOOK_LIBVIRT_SOCK"] = "/t/sock"
	if h := FromEnv(func(k string) string { return env[k] }); !slices.Equal(h.Sockets, []string{"/t/sock"}) {
		t.Errorf("sockets %q, want only FDBHOOK_LIBVIRT_SOCK's", h.Sockets)
	}
}

// TestDryRunValues: "", 0, no and false (any case) are no; anything else
// is yes.
func TestDryRunValues(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "no": false, "NO": false, "false": false, "False": false,
		"1": true, "yes": true, "true": true, "y": true} {
		if got := FromEnv(func(k string) string {
			if k == EnvDryRun {
				return v
			}
			return ""
		}).DryRun; got != want {
			t.Errorf("FDBHOOK_DRY_RUN=%q: dry run %v, want %v", v, got, want)
		}
	}
}

// TestExitCodes: the codes are the documented ones; an error without one
// refuses.
func TestExitCodes(t *testing.T) {
	if ExitOK != 0 || ExitRefused != 1 || ExitUsage != 2 || ExitConfig != 3 || ExitInput != 4 {
		t.Fatal("exit codes moved: the man page, libvirt's reading and the tests depend on them")
	}
	wrapped := fmt.Errorf("reading: %w", &ExitError{Code: ExitInput, Err: errors.New("bad")})
	for err, want := range map[error]int{nil: 0, errors.New("x"): 1, wrapped: 4} {
		if got := ExitCode(err); got != want {
			t.Errorf("ExitCode(%v) = %d, want %d", err, got, want)
		}
	}
}
