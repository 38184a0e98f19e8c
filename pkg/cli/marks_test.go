package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/host"
	"github.com/fdbhook/fdbhook/pkg/kernel/kerneltest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
	"github.com/fdbhook/fdbhook/test/lab"
)

// TestReconcileSettlesMarks: after a reconcile, the migration mark of a
// guest it gave its full start is removed, and so is the mark of a guest
// not running here once it is more than 10 s old (a migration refused
// before the guest existed here), not sooner; the mark of a guest still
// paused for its incoming migration stays. A dry run removes none.
func TestReconcileSettlesMarks(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	marks := map[string]time.Duration{"t2": time.Hour, "in1": time.Hour,
		"gone9": 9 * time.Second, "gone10": 10 * time.Second, "gone11": 11 * time.Second}
	kept := map[string]bool{"in1": true, "gone9": true, "gone10": true}
	for _, dry := range []bool{false, true} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "fdbhook.toml"), []byte(cfgBr0), 0o644)
		os.WriteFile(filepath.Join(dir, "t2.xml"), startXML, 0o600)
		in1 := lab.Domain{Name: "in1"}.Live(lab.Status{State: "paused", Reason: "migration", Pid: 5, Job: "migration in"})
		os.WriteFile(filepath.Join(dir, "in1.xml"), []byte(in1), 0o600)
		runDir := runstate.Dir(filepath.Join(dir, "run"))
		for g, age := range marks {
			if err := runDir.PutMark(runstate.Mark{Guest: g, Phase: runstate.Pending, Since: now.Add(-age)}); err != nil {
				t.Fatal(err)
			}
		}
		var out, errb bytes.Buffer
		k := kerneltest.T2Host()
		h := host.Default()
		h.Config, h.RunDir = filepath.Join(dir, "fdbhook.toml"), runDir
		h.Libvirt, h.LibvirtEtc = libvirt.Paths{QemuRunDir: dir}, filepath.Join(dir, "etc")
		h.Lock, h.LockTimeout = filepath.Join(dir, "lock"), time.Second
		env := &Env{Env: host.Env{Program: "fdbhook", Stdout: &out, Stderr: &errb, Host: h,
			Now: func() time.Time { return now }, OpenKernel: func() (model.Kernel, error) { return k, nil }}}
		args := []string{"reconcile"}
		if dry {
			args = append(args, "--dry-run")
		}
		if code := Main(env, args); code != host.ExitOK {
			t.Fatalf("reconcile %v: exit %d\n%s%s", args, code, out.String(), errb.String())
		}
		for g := range marks {
			_, ok, err := runDir.GetMark(g)
			if want := kept[g] || dry; ok != want || err != nil {
				t.Errorf("dry run %v: mark of %s left: %v (%v), want %v\n%s", dry, g, ok, err, want, out.String())
			}
		}
		if !dry && !strings.Contains(out.String(), "guest gone11: removed its migration mark") {
			t.Errorf("the removal is not reported:\n%s", out.String())
		}
	}
}
