package runstate

import (
	"os"
	"testing"
	"time"
)

func TestHookRuns(t *testing.T) {
	d := Dir(t.TempDir())
	if runs, err := d.HookRuns(); err != nil || len(runs) != 0 {
		t.Fatalf("HookRuns with no file = %v, %v; want none", runs, err)
	}
	for _, c := range []struct {
		op     string
		failed bool
	}{{"start", false}, {"start", true}, {"stopped", false}, {"start", false}} {
		if err := d.CountHookRun(c.op, c.failed); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := d.HookRuns()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]RunCount{"start": {Runs: 3, Failed: 1}, "stopped": {Runs: 1}}
	if len(runs) != len(want) || runs["start"] != want["start"] || runs["stopped"] != want["stopped"] {
		t.Fatalf("HookRuns = %v, want %v", runs, want)
	}
	data, _ := os.ReadFile(d.HookRunsPath())
	if got := string(data); got != "start 3 1\nstopped 1 0\n" {
		t.Fatalf("file = %q", got)
	}
	if err := d.CountHookRun("two words", false); err == nil {
		t.Fatal("an operation with a space was counted")
	}
	ents, _ := os.ReadDir(string(d))
	if len(ents) != 1 {
		t.Fatalf("run dir holds %d files after counting, want 1 (no temporary files left)", len(ents))
	}
}

func TestHookRunsDamagedLines(t *testing.T) {
	d := Dir(t.TempDir())
	os.WriteFile(d.HookRunsPath(), []byte("start 2 x\nrelease 4 1\ngarbage\n"), 0o644)
	runs, err := d.HookRuns()
	if err != nil || len(runs) != 1 || runs["release"] != (RunCount{Runs: 4, Failed: 1}) {
		t.Fatalf("HookRuns = %v, %v; want only release 4 1", runs, err)
	}
	// Counting over it keeps the good line and drops the rest.
	if err := d.CountHookRun("release", false); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(d.HookRunsPath()); string(data) != "release 5 1\n" {
		t.Fatalf("file after counting over damaged lines = %q, want %q", data, "release 5 1\n")
	}
}

func TestReconcileRecord(t *testing.T) {
	d := Dir(t.TempDir())
	if _, ok, err := d.LastReconcile(); ok || err != nil {
		t.Fatalf("LastReconcile with no record: ok=%v err=%v", ok, err)
	}
	now := time.Unix(1_800_000_000, 0)
	if err := d.PutReconcile(Reconcile{Time: now, Guests: 3, Failed: 1}); err != nil {
		t.Fatal(err)
	}
	r, ok, err := d.LastReconcile()
	if err != nil || !ok || !r.Time.Equal(now) || r.Guests != 3 || r.Failed != 1 || r.OK() {
		t.Fatalf("LastReconcile = %+v, %v, %v", r, ok, err)
	}
	if !(Reconcile{Guests: 2}).OK() || (Reconcile{Err: "no kernel"}).OK() {
		t.Fatal("OK() is wrong")
	}
	os.WriteFile(d.ReconcilePath(), []byte("{"), 0o644)
	if _, _, err := d.LastReconcile(); err == nil {
		t.Fatal("a damaged record read without error")
	}
}

// BenchmarkCountHookRun is what counting adds to a hook run: read, add,
// write a temporary file, rename (run it with -benchtime on a tmpfs such
// as /run to see the production figure).
func BenchmarkCountHookRun(b *testing.B) {
	dir := b.TempDir()
	if base := os.Getenv("FDBHOOK_BENCH_DIR"); base != "" {
		var err error
		if dir, err = os.MkdirTemp(base, "fdbt-count-"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	d := Dir(dir)
	for _, op := range []string{"start", "stopped", "release", "reconnect"} {
		d.CountHookRun(op, false)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := d.CountHookRun("start", i%10 == 0); err != nil {
			b.Fatal(err)
		}
	}
}
