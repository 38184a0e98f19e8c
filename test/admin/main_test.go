package admin

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

// repoRoot is the repository, relative to this package's directory.
const repoRoot = "../.."

// bins are private copies of bin/qemu-hook and bin/network-hook (built
// when missing), so a concurrent `make build` cannot swap them halfway.
var bins = map[string]string{}

// nsPrefix names this process's namespaces: fdbt-adm-<pid>-<n>.
var nsPrefix = fmt.Sprintf("fdbt-adm-%d-", os.Getpid())

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("admin: not root: every test will skip (they create network namespaces, bridges and taps)")
		return m.Run()
	}
	sweepStaleNamespaces()
	tmp, err := os.MkdirTemp("", "fdbt-adm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	for _, name := range []string{"qemu-hook", "network-hook"} {
		p, err := prepareBinary(tmp, name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "admin:", err)
			return 1
		}
		bins[name] = p
	}
	if out, err := exec.Command(bins["qemu-hook"], "--version").Output(); err == nil {
		fmt.Printf("admin: testing %s", out)
	}
	return m.Run()
}

// prepareBinary copies bin/NAME into dir, building it when it does not
// exist, and returns the copy's path.
func prepareBinary(dir, name string) (string, error) {
	src := filepath.Join(repoRoot, "bin", name)
	dst := filepath.Join(dir, name)
	if _, err := os.Stat(src); err != nil {
		fmt.Printf("admin: %s missing: building it\n", src)
		cmd := exec.Command(goTool(), "build", "-trimpath", "-o", dst, "./cmd/"+name)
		cmd.Dir = repoRoot
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

// sweepStaleNamespaces deletes fdbt-adm-<pid>-* namespaces left by runs of
// this suite that died.
func sweepStaleNamespaces() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), "fdbt-adm-")
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

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: creates network namespaces, bridges and taps (euid %d)", os.Geteuid())
	}
	for _, tool := range []string{"ip", "bridge"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs iproute2's %s (run test/deps.sh iproute2): %v", tool, err)
		}
	}
}
