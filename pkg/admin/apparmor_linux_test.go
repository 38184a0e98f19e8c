package admin

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeAppArmor is a host's /proc, /sys and /usr/sbin in a directory, and a
// kernel that answers .access queries the way apparmorfs.c's query_label
// does, from rules: profile name -> path prefixes it may execute.
type fakeAppArmor struct {
	AppArmor
	t       *testing.T
	rules   map[string][]string
	queries [][]byte
}

func newFakeAppArmor(t *testing.T) *fakeAppArmor {
	t.Helper()
	dir := t.TempDir()
	f := &fakeAppArmor{t: t, rules: map[string][]string{}}
	f.AppArmor = AppArmor{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Sbin: filepath.Join(dir, "sbin"), Query: f.query}
	for _, d := range []string{f.Proc, f.fs(), filepath.Join(f.Sys, "module/apparmor/parameters"), f.Sbin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(f.Sys, "module/apparmor/parameters/enabled"), "Y\n", 0o644)
	writeFile(t, filepath.Join(f.fs(), ".access"), "", 0o666)
	writeFile(t, filepath.Join(f.fs(), "profiles"), "", 0o444)
	return f
}

// daemon makes a process pid with an AppArmor label, and its program.
func (f *fakeAppArmor) daemon(name string, pid int, label string) {
	dir := filepath.Join(f.Proc, fmt.Sprint(pid), "attr", "apparmor")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.t.Fatal(err)
	}
	writeFile(f.t, filepath.Join(dir, "current"), label+"\n", 0o444)
	writeFile(f.t, filepath.Join(f.Sbin, name), "", 0o755)
}

// query is the kernel's side: "label\0NAME\0" + class + path in, the
// permissions out.
func (f *fakeAppArmor) query(access string, q []byte) ([]byte, error) {
	f.queries = append(f.queries, q)
	if access != filepath.Join(f.fs(), ".access") {
		return nil, fmt.Errorf("query written to %s", access)
	}
	rest, ok := bytes.CutPrefix(q, []byte("label\x00"))
	name, match, ok2 := bytes.Cut(rest, []byte{0})
	if !ok || !ok2 || len(match) < 2 || match[0] != aaClassFile {
		return nil, fmt.Errorf("malformed query %q", q)
	}
	// Every path may be read and written (libvirtd's "/** rwmkl"), the
	// rule's paths executed too (its "/etc/libvirt/hooks/** rmix").
	allow := 0x4 | 0x2
	for _, prefix := range f.rules[string(name)] {
		if strings.HasPrefix(string(match[1:]), prefix) {
			allow |= aaMayExec
		}
	}
	return fmt.Appendf(nil, "allow 0x%08x\ndeny 0x%08x\naudit 0x%08x\nquiet 0x%08x\n", allow, 0, 0, 0), nil
}

// noexecPolicy is a host policy whose mounts are noexec under a prefix.
type noexecPolicy struct {
	*fakeAppArmor
	noexec string
}

func (p noexecPolicy) NoExec(path string) (bool, error) {
	return p.noexec != "" && strings.HasPrefix(path, p.noexec), nil
}

// hooksWith makes a hooks directory whose qemu hook is a regular file, or,
// with link, a link to a file elsewhere (the layout AppArmor denies).
func hooksWith(t *testing.T, link bool) (hooks, target string) {
	t.Helper()
	dir := t.TempDir()
	hooks = filepath.Join(dir, "hooks")
	if err := os.MkdirAll(filepath.Join(hooks, "qemu.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	target = filepath.Join(hooks, "qemu.d", "fdbhook")
	if link {
		target = filepath.Join(dir, "libexec", "qemu-hook")
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(hooks, "qemu.d", "fdbhook")); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, target, "fdbhook qemu-hook", 0o755)
	return hooks, target
}

func TestAppArmorDeniesLinkedHook(t *testing.T) {
	aa := newFakeAppArmor(t)
	hooks, target := hooksWith(t, true)
	aa.rules["libvirtd"] = []string{hooks + "/"}
	aa.daemon("libvirtd", 565, "libvirtd (enforce)")
	checks := HookExecChecks(hooks, []Daemon{{Name: "libvirtd", PID: 565}}, noexecPolicy{fakeAppArmor: aa}, false)
	expectChecks(t, checks, `
		qemu hook | fail | AppArmor profile libvirtd (enforce) of libvirtd (pid 565) does not let it execute `+filepath.Join(hooks, "qemu.d", "fdbhook")+` -> `+target+`
		qemu hook | fail | every guest start fails with exit status 126
	`)
	// The kernel judges the link's target, so that is what is asked.
	want := append([]byte("label\x00libvirtd\x00\x02"), target...)
	if len(aa.queries) != 1 || !bytes.Equal(aa.queries[0], want) {
		t.Errorf("queries %q, want one: %q", aa.queries, want)
	}
	if c := checks[0]; strings.Count(formatted([]Check{c}), "\n") != 1 {
		t.Errorf("the failure is not one line: %q", formatted([]Check{c}))
	}
}

func TestAppArmorAllowsRegularHook(t *testing.T) {
	aa := newFakeAppArmor(t)
	hooks, target := hooksWith(t, false)
	aa.rules["libvirtd"] = []string{hooks + "/"}
	aa.daemon("libvirtd", 565, "libvirtd (enforce)")
	checks := HookExecChecks(hooks, []Daemon{{Name: "libvirtd", PID: 565}}, noexecPolicy{fakeAppArmor: aa}, false)
	expectChecks(t, checks, `qemu hook | ok | AppArmor profile libvirtd (enforce) of libvirtd (pid 565) lets it execute `+target)
	if Failed(checks) {
		t.Errorf("a regular hook under the hooks directory fails:\n%s", formatted(checks))
	}
}

func TestAppArmorModesAndDaemons(t *testing.T) {
	for _, tc := range []struct {
		name    string
		setup   func(aa *fakeAppArmor) []Daemon
		noexec  bool
		want    string // NAME | LEVEL | TEXT, or "" for no check at all
		queries int
	}{
		{name: "complain mode only logs", setup: func(aa *fakeAppArmor) []Daemon {
			aa.daemon("libvirtd", 7, "libvirtd (complain)")
			return []Daemon{{Name: "libvirtd", PID: 7}}
		}, want: "qemu hook | warn | only logged in this mode", queries: 1},
		{name: "unconfined daemon", setup: func(aa *fakeAppArmor) []Daemon {
			aa.daemon("virtqemud", 8, "unconfined")
			return []Daemon{{Name: "virtqemud", PID: 8}}
		}},
		{name: "idle libvirtd judged by its loaded profile", setup: func(aa *fakeAppArmor) []Daemon {
			writeFile(aa.t, filepath.Join(aa.fs(), "profiles"), "virt-aa-helper (enforce)\nlibvirtd (enforce)\n", 0o444)
			writeFile(aa.t, filepath.Join(aa.Sbin, "libvirtd"), "", 0o755)
			return nil
		}, want: "qemu hook | fail | AppArmor profile libvirtd (enforce) of libvirtd (not running: the profile it starts under)", queries: 1},
		{name: "a profile of a daemon that is not installed", setup: func(aa *fakeAppArmor) []Daemon {
			writeFile(aa.t, filepath.Join(aa.fs(), "profiles"), "virtqemud (enforce)\n", 0o444)
			return nil
		}},
		{name: "no query interface", setup: func(aa *fakeAppArmor) []Daemon {
			aa.daemon("libvirtd", 9, "libvirtd (enforce)")
			if err := os.Remove(filepath.Join(aa.fs(), ".access")); err != nil {
				aa.t.Fatal(err)
			}
			return []Daemon{{Name: "libvirtd", PID: 9}}
		}, want: "qemu hook | warn | could not check whether AppArmor lets libvirtd (pid 9) execute"},
		{name: "AppArmor off", setup: func(aa *fakeAppArmor) []Daemon {
			aa.daemon("libvirtd", 10, "libvirtd (enforce)")
			writeFile(aa.t, filepath.Join(aa.Sys, "module/apparmor/parameters/enabled"), "N\n", 0o644)
			return []Daemon{{Name: "libvirtd", PID: 10}}
		}},
		{name: "noexec mount", noexec: true, setup: func(aa *fakeAppArmor) []Daemon {
			aa.daemon("libvirtd", 11, "libvirtd (enforce)")
			return []Daemon{{Name: "libvirtd", PID: 11}}
		}, want: "qemu hook | fail | is on a filesystem mounted noexec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aa := newFakeAppArmor(t)
			aa.t = t
			hooks, _ := hooksWith(t, true)
			pol := noexecPolicy{fakeAppArmor: aa}
			if tc.noexec {
				pol.noexec = filepath.Dir(hooks)
			}
			checks := HookExecChecks(hooks, tc.setup(aa), pol, false)
			if tc.want == "" && len(checks) != 0 {
				t.Errorf("want no check, got:\n%s", formatted(checks))
			}
			if tc.want != "" {
				expectChecks(t, checks, tc.want)
			}
			if len(aa.queries) != tc.queries {
				t.Errorf("%d queries, want %d: %q", len(aa.queries), tc.queries, aa.queries)
			}
		})
	}
}

func TestHookExecChecksFiles(t *testing.T) {
	aa := newFakeAppArmor(t)
	hooks, target := hooksWith(t, true)
	pol := noexecPolicy{fakeAppArmor: aa}
	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	expectChecks(t, HookExecChecks(hooks, nil, pol, false), "qemu hook | fail | is not an executable file")
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	expectChecks(t, HookExecChecks(hooks, nil, pol, false), "qemu hook | fail | is a broken link to "+target)
	// Not installed: doctor says so, these checks do not.
	empty := t.TempDir()
	if checks := HookExecChecks(empty, nil, pol, true); len(checks) != 0 {
		t.Errorf("checks for hooks that are not installed:\n%s", formatted(checks))
	}
}

func TestDoctorAndStatusReportAppArmorDenial(t *testing.T) {
	sys, dir := fakeSystem(t)
	bin := installQemuHook(t, sys, dir, "bridges = [\"br0\"]\n")
	aa := newFakeAppArmor(t)
	aa.rules["libvirtd"] = []string{sys.HooksDir + "/"}
	aa.daemon("libvirtd", 565, "libvirtd (enforce)")
	sys.Daemons = func() ([]Daemon, error) { return []Daemon{{Name: "libvirtd", PID: 565}}, nil }
	sys.Exec = noexecPolicy{fakeAppArmor: aa}
	checks := Doctor(sys)
	expect(t, checks, "qemu hook", Fail, "AppArmor profile libvirtd (enforce) of libvirtd (pid 565) does not let it execute "+
		filepath.Join(sys.HooksDir, "qemu.d", "fdbhook")+" -> "+bin)
	if !Failed(checks) {
		t.Errorf("doctor passes a hook AppArmor denies:\n%s", formatted(checks))
	}

	k, running, defined := world(t)
	st := state(t, k, cfgBr0, running, defined)
	before, err := Status(st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hooks := HookExecChecks(sys.HooksDir, []Daemon{{Name: "libvirtd", PID: 565}}, sys.Exec, false)
	rep, err := Status(st, hooks, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := problemKinds(rep)[ProblemHook]; len(got) != 1 || len(rep.Problems) != len(before.Problems)+1 {
		t.Fatalf("status problems %+v, want those of the world and one hook problem", rep.Problems)
	}
	if p := rep.Problems[len(rep.Problems)-1]; !strings.Contains(p.Text, "qemu hook: AppArmor profile libvirtd (enforce)") {
		t.Errorf("hook problem %q does not name the profile", p.Text)
	}
}
