package integration

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the repository, relative to this package's directory (where
// go test runs).
const repoRoot = "../.."

// hookBin is the qemu-hook binary under test: a private copy of
// bin/qemu-hook (built when missing), so a concurrent `make build` cannot
// swap it out halfway through the suite. $FDBHOOK_TEST_BIN names another
// binary instead (an installed package's, say).
var hookBin string

// nsPrefix names this process's namespaces: fdbt-it-<pid>-<n>.
var nsPrefix = fmt.Sprintf("fdbt-it-%d-", os.Getpid())

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("integration: not root: every test will skip (they create network namespaces and bridges)")
		return m.Run()
	}
	sweepStaleNamespaces()
	tmp, err := os.MkdirTemp("", "fdbt-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	hookBin, err = prepareBinary(tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	if out, err := exec.Command(hookBin, "--version").Output(); err == nil {
		fmt.Printf("integration: testing %s", out)
	}
	return m.Run()
}

// prepareBinary copies bin/qemu-hook into dir, building it first when it
// does not exist, and returns the copy's path.
func prepareBinary(dir string) (string, error) {
	src := filepath.Join(repoRoot, "bin", "qemu-hook")
	if env := os.Getenv("FDBHOOK_TEST_BIN"); env != "" {
		src = env
	}
	dst := filepath.Join(dir, "qemu-hook")
	if _, err := os.Stat(src); err != nil && src != os.Getenv("FDBHOOK_TEST_BIN") {
		fmt.Printf("integration: %s missing: building it\n", src)
		cmd := exec.Command(goTool(), "build", "-trimpath", "-o", dst, "./cmd/qemu-hook")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build ./cmd/qemu-hook: %v\n%s", err, out)
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

// sweepStaleNamespaces deletes fdbt-it-<pid>-* namespaces left by runs of
// this suite that died (their pid no longer exists).
func sweepStaleNamespaces() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "fdbt-it-")
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

// requireRoot skips t when the suite cannot create namespaces.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: creates network namespaces, bridges and taps (euid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs iproute2's ip and bridge (run test/deps.sh iproute2): %v", err)
	}
}
