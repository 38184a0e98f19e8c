package runstate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMarkRoundTrip(t *testing.T) {
	d := Dir(t.TempDir())
	now := time.Unix(1_800_000_000, 0)
	if _, ok, err := d.GetMark("g1"); ok || err != nil {
		t.Fatalf("GetMark on an empty dir: ok=%v err=%v, want no mark and no error", ok, err)
	}
	m := Mark{Guest: "g1", UUID: "u-1", Phase: Incoming, Since: now}
	if err := d.PutMark(m); err != nil {
		t.Fatal(err)
	}
	got, ok, err := d.GetMark("g1")
	if err != nil || !ok || got.Guest != "g1" || got.UUID != "u-1" || got.Phase != Incoming || !got.Since.Equal(now) {
		t.Fatalf("GetMark = %+v, %v, %v; want %+v", got, ok, err, m)
	}
	m.Phase = Pending
	if err := d.PutMark(m); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := d.GetMark("g1"); got.Phase != Pending {
		t.Fatalf("phase after rewrite = %q, want %q", got.Phase, Pending)
	}
	if err := d.PutMark(Mark{Guest: "../../etc/x", Phase: Incoming, Since: now}); err != nil {
		t.Fatal(err)
	}
	marks, err := d.Marks()
	if err != nil || len(marks) != 2 {
		t.Fatalf("Marks = %v, %v; want 2 marks", marks, err)
	}
	ents, _ := os.ReadDir(filepath.Join(string(d), "migration"))
	if len(ents) != 2 {
		t.Fatalf("migration dir holds %d files, want 2 (a name with / must stay inside)", len(ents))
	}
	for _, g := range []string{"g1", "../../etc/x", "never-marked"} {
		if err := d.ClearMark(g); err != nil {
			t.Fatalf("ClearMark(%q): %v", g, err)
		}
	}
	if marks, _ := d.Marks(); len(marks) != 0 {
		t.Fatalf("marks left after clearing: %v", marks)
	}
}

func TestMarkDamaged(t *testing.T) {
	d := Dir(t.TempDir())
	os.MkdirAll(filepath.Join(string(d), "migration"), 0o755)
	os.WriteFile(d.marks().path("g"), []byte("{not json"), 0o644)
	if _, ok, err := d.GetMark("g"); ok || err == nil {
		t.Fatalf("damaged mark: ok=%v err=%v, want an error", ok, err)
	}
	os.WriteFile(d.marks().path("h"), []byte(`{"guest":"other","phase":"incoming"}`), 0o644)
	if _, ok, err := d.GetMark("h"); ok || err == nil {
		t.Fatalf("mark naming another guest: ok=%v err=%v, want an error", ok, err)
	}
}

// TestFresh pins the age limits with their figures, not the package's
// constant: a mark is fresh from a minute in the future (a clock set
// back) to 10 minutes old, both included.
func TestFresh(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		age  time.Duration
		want bool
	}{
		{0, true}, {5 * time.Second, true},
		{10 * time.Minute, true}, {10*time.Minute + time.Nanosecond, false}, {11 * time.Minute, false},
		{-time.Minute, true}, {-time.Minute - time.Nanosecond, false}, {-2 * time.Minute, false},
	} {
		if got := (Mark{Since: now.Add(-c.age)}).Fresh(now); got != c.want {
			t.Errorf("Fresh with age %v = %v, want %v", c.age, got, c.want)
		}
	}
}

func TestWatcherLock(t *testing.T) {
	d := Dir(t.TempDir())
	if _, running, err := d.WatcherRunning(); running || err != nil {
		t.Fatalf("no lock file: running=%v err=%v", running, err)
	}
	now := time.Unix(1_800_000_000, 0)
	release, err := d.HoldWatcher(now)
	if err != nil {
		t.Fatal(err)
	}
	w, running, err := d.WatcherRunning()
	if err != nil || !running || w.PID != os.Getpid() || !w.Since.Equal(now) {
		t.Fatalf("WatcherRunning while held = %+v, %v, %v; want pid %d since %v", w, running, err, os.Getpid(), now)
	}
	if _, err := d.HoldWatcher(now); err == nil {
		t.Fatal("a second HoldWatcher succeeded while the first holds the lock")
	}
	release()
	if _, running, err := d.WatcherRunning(); running || err != nil {
		t.Fatalf("after release: running=%v err=%v", running, err)
	}
	// A lock file left by a watcher that died (no holder) is not a watcher.
	os.WriteFile(d.WatcherLockPath(), []byte("4242 1800000000\n"), 0o644)
	if _, running, _ := d.WatcherRunning(); running {
		t.Fatal("a stale lock file with no holder counted as a running watcher")
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "lock")
	unlock, err := Lock(context.Background(), path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Lock(context.Background(), path, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "held") {
		t.Fatalf("second Lock while held: %v, want a timeout naming the lock", err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("gave up after %s, before its 50ms timeout", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Lock(ctx, path, time.Hour); err == nil {
		t.Fatal("Lock with a cancelled context waited for the lock instead of giving up")
	}
	unlock()
	again, err := Lock(context.Background(), path, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	again()
	if u, err := Lock(context.Background(), "", 0); err != nil || u == nil {
		t.Fatalf("Lock with no path: %v", err)
	}
}
