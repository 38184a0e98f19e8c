package events

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestHooksExitBeforeInitialising builds the hook binaries and runs each
// for an event it ignores and one it acts on, with Go's init trace: the
// ignored event ends with exit 0 and no output before the hook's own
// packages (and logrus, netlink) initialise; the other gets that far.
func TestHooksExitBeforeInitialising(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	dir := t.TempDir()
	for _, c := range []struct{ bin, ignored, acted string }{
		{"qemu-hook", "prepare", "start"},
		{"network-hook", "stopped", "start"},
		{"lxc-hook", "start", "started"},
	} {
		exe := filepath.Join(dir, c.bin)
		build := exec.Command(goTool, "build", "-o", exe, "github.com/fdbhook/fdbhook/cmd/"+c.bin)
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", c.bin, err, out)
		}
		run := func(op string) (inits, stdout string, err error) {
			cmd := exec.Command(exe, "obj", op, "begin", "-")
			// An empty configuration: an acted-on event then changes nothing.
			cmd.Env = []string{"GODEBUG=inittrace=1", "FDBHOOK_CONFIG=" + filepath.Join(dir, "none.toml")}
			var o, e strings.Builder
			cmd.Stdout, cmd.Stderr = &o, &e
			err = cmd.Run()
			return e.String(), o.String(), err
		}
		inits, stdout, err := run(c.ignored)
		if err != nil || stdout != "" {
			t.Errorf("%s obj %s begin: %v, stdout %q", c.bin, c.ignored, err, stdout)
		}
		for _, pkg := range []string{"github.com/fdbhook/fdbhook/pkg/hook", "github.com/sirupsen/logrus", "github.com/vishvananda/netlink"} {
			if strings.Contains(inits, "init "+pkg+" ") {
				t.Errorf("%s initialised %s for an ignored event:\n%s", c.bin, pkg, inits)
			}
		}
		inits, _, err = run(c.acted)
		if err != nil || !strings.Contains(inits, "init github.com/fdbhook/fdbhook/pkg/hook ") && !strings.Contains(inits, "init github.com/sirupsen/logrus ") {
			t.Errorf("%s obj %s begin: %v; neither pkg/hook nor logrus initialised:\n%s", c.bin, c.acted, err, inits)
		}
	}
}
