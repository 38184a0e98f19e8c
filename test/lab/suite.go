package lab

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// RepoRoot is the repository, relative to a suite's directory (test/NAME,
// where go test runs it).
const RepoRoot = "../.."

// Suite is what one test package sets up once, in TestMain: private copies
// of the binaries it runs, so that a concurrent `make build` cannot swap
// them out halfway through, and the names of its namespaces.
type Suite struct {
	// Name starts the suite's messages ("integration: ...").
	Name string
	// Tag names the suite's namespaces: fdbt-<Tag>-<pid>-<n>.
	Tag string
	// Programs are the binaries the suite runs, from bin/ (built there
	// when missing). The first one's version is printed.
	Programs []string
	// BinEnv, when not "", is an environment variable that, when set,
	// names the binary to test instead of bin/<Programs[0]> (an installed
	// package's, say).
	BinEnv string

	bins map[string]string
	seq  atomic.Int64
}

// Main prepares the suite and runs its tests; TestMain passes its result
// to os.Exit. Without root it says why nothing runs (see Unavailable).
func (s *Suite) Main(m *testing.M) int {
	if os.Geteuid() != 0 {
		return Unavailable(s.Name, "not root: the tests create network namespaces, bridges and taps")
	}
	s.sweep()
	tmp, err := os.MkdirTemp("", s.prefix())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	s.bins = map[string]string{}
	for i, name := range s.Programs {
		src := filepath.Join(RepoRoot, "bin", name)
		override := ""
		if i == 0 && s.BinEnv != "" {
			override = os.Getenv(s.BinEnv)
		}
		p, err := s.prepare(tmp, name, src, override)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", s.Name, err)
			return 1
		}
		s.bins[name] = p
	}
	if len(s.Programs) > 0 {
		if out, err := exec.Command(s.bins[s.Programs[0]], "--version").Output(); err == nil {
			fmt.Printf("%s: testing %s", s.Name, out)
		}
	}
	return m.Run()
}

// Bin is the path of the suite's private copy of program ("" when Main
// did not prepare it: not root).
func (s *Suite) Bin(program string) string { return s.bins[program] }

// NextName returns a new namespace name, fdbt-<tag>-<pid>-<n>.
func (s *Suite) NextName() string {
	return fmt.Sprintf("%s%d-%d", s.prefix(), os.Getpid(), s.seq.Add(1))
}

// prefix is what every name of the suite starts with.
func (s *Suite) prefix() string { return "fdbt-" + s.Tag + "-" }

// prepare copies src (or override, when not "") into dir as name, and
// returns the copy's path. A missing src is built from ./cmd/name instead;
// a missing override is an error.
func (s *Suite) prepare(dir, name, src, override string) (string, error) {
	if override != "" {
		src = override
	}
	dst := filepath.Join(dir, name)
	if _, err := os.Stat(src); err != nil && override == "" {
		fmt.Printf("%s: %s missing: building it\n", s.Name, src)
		cmd := exec.Command(goTool(), "build", "-trimpath", "-o", dst, "./cmd/"+name)
		cmd.Dir = RepoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build ./cmd/%s: %v\n%s", name, err, out)
		}
		return dst, nil
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return "", err
	}
	return dst, out.Close()
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// sweep deletes fdbt-<tag>-<pid>-* namespaces left by runs of the suite
// that died (their pid no longer exists).
func (s *Suite) sweep() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), s.prefix())
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue
		}
		_ = exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// RequireRoot skips tb when it cannot build a lab: not root, or no
// iproute2.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skipf("needs root: creates network namespaces, bridges and taps (euid %d)", os.Geteuid())
	}
	for _, tool := range []string{"ip", "bridge"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("needs iproute2's %s (run test/deps.sh iproute2): %v", tool, err)
		}
	}
}

// RequireTun skips tb when there is no /dev/net/tun to open a tap with.
func RequireTun(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		tb.Skipf("needs /dev/net/tun to play the guest: %v", err)
	}
}

// Unavailable ends a suite whose environment is missing, saying why, and
// returns the exit status for TestMain: 0 (a skip) normally, 1 under
// CI=true, where CI installs what every suite needs and a skip would hide a
// missing step.
func Unavailable(suite, reason string) int {
	if os.Getenv("CI") == "true" {
		fmt.Printf("%s: FAIL: %s (CI=true: the suite must run, not skip)\n", suite, reason)
		return 1
	}
	fmt.Printf("%s: SKIP: %s\n", suite, reason)
	return 0
}
