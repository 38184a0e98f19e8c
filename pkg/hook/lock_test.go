package hook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// TestStartWaitsForTheRunLock: a start while another run holds the run
// lock touches nothing and, once its wait runs out, fails with one line
// saying so; once the lock is free, the same start applies.
func TestStartWaitsForTheRunLock(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "lock")
	start := func() (int, string, *kerneltest.Kernel) {
		k := kerneltest.T2Host()
		tr := newTestRun(dir, "qemu-hook", startXML, nil, k)
		tr.r.LockTimeout = 50 * time.Millisecond
		res := tr.call((*Runner).RunQemu, []string{"t2", "start", "begin", "-"})
		if res.stdout != "" {
			t.Errorf("stdout %q", res.stdout)
		}
		return res.code, res.stderr, k
	}
	if err := os.WriteFile(filepath.Join(dir, "fdbhook.toml"), []byte(cfgBr0), 0o644); err != nil {
		t.Fatal(err)
	}

	// The other run: a lock of its own on the same file, as another process's.
	unlock, err := runstate.Lock(context.Background(), lock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	code, stderr, k := start()
	if code == host.ExitOK || !strings.Contains(stderr, "held "+lock) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("start while the lock is held: exit %d, stderr %q; want a failure naming the held lock, in one line", code, stderr)
	}
	if w := k.WriteLog(); len(w) != 0 {
		t.Errorf("start while the lock is held wrote %q", w)
	}
	unlock()

	code, stderr, k = start()
	if code != host.ExitOK || stderr != "" || len(k.WriteLog()) == 0 {
		t.Errorf("start with the lock free: exit %d, stderr %q, writes %q", code, stderr, k.WriteLog())
	}
}
