package hook

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestHookBinariesStayLean: libvirt runs the hook binaries at every guest
// start, so they link the hook path (pkg/hook and the engine, pkg/manage)
// only: not the admin commands, their reports, the watcher, its
// libvirt API client or the metrics library.
func TestHookBinariesStayLean(t *testing.T) {
	forbidden := []string{
		"github.com/fdbhook/fdbhook/pkg/admin",
		"github.com/fdbhook/fdbhook/pkg/cli",
		"github.com/fdbhook/fdbhook/pkg/watch",
		"github.com/fdbhook/fdbhook/pkg/metrics",
		"github.com/digitalocean/go-libvirt",
		"github.com/prometheus/",
	}
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, bin := range []string{"qemu-hook", "network-hook", "lxc-hook"} {
		out, err := exec.Command(goTool, "list", "-deps", "github.com/fdbhook/fdbhook/cmd/"+bin).Output()
		if err != nil {
			t.Fatalf("go list -deps ./cmd/%s: %v", bin, err)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 || !slices.Contains(deps, "github.com/fdbhook/fdbhook/pkg/hook") ||
			!slices.Contains(deps, "github.com/fdbhook/fdbhook/pkg/manage") {
			t.Fatalf("go list -deps ./cmd/%s listed %d packages without pkg/hook and the engine: %q", bin, len(deps), out)
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if strings.HasPrefix(d, f) {
					t.Errorf("cmd/%s links %s", bin, d)
				}
			}
		}
	}
}
