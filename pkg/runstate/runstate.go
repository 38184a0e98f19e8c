package runstate

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MaxPrepare bounds the time from a destination's "migrate begin" to its
// "start begin" (libvirt runs them a few seconds apart; the memory copy
// comes after start). A mark older than this at "start begin" was left by
// a migration that never got that far, and the start is an ordinary one.
const MaxPrepare = 10 * time.Minute

// Dir is a run directory.
type Dir string

// Mark records one guest's incoming migration.
type Mark struct {
	Guest string    `json:"guest"`
	UUID  string    `json:"uuid,omitempty"`
	Phase Phase     `json:"phase"`
	Since time.Time `json:"since"` // when "migrate begin" ran
}

// Phase is how far an incoming migration has come on this host.
type Phase string

const (
	// Incoming: "migrate begin" ran here; the guest's ports do not exist yet.
	Incoming Phase = "incoming"
	// Pending: "start begin" turned flooding off on the guest's new ports,
	// left learning on, and left the static entries (and learning off) for
	// the resume, when the guest's CPUs start here.
	Pending Phase = "pending"
)

// Fresh reports whether an Incoming mark is young enough, at now, to make a
// "start begin" the start of an incoming migration.
func (m Mark) Fresh(now time.Time) bool {
	age := now.Sub(m.Since)
	return age >= -time.Minute && age <= MaxPrepare
}

// PutMark writes m atomically (a rename), replacing any earlier mark.
func (d Dir) PutMark(m Mark) error { return d.marks().put(m.Guest, m) }

// GetMark reads a guest's mark; ok is false when there is none.
func (d Dir) GetMark(guest string) (m Mark, ok bool, err error) {
	ok, err = d.marks().get(guest, &m, func() string { return m.Guest })
	if !ok {
		return Mark{}, false, err
	}
	return m, true, nil
}

// ClearMark removes a guest's mark; no mark is not an error.
func (d Dir) ClearMark(guest string) error { return d.marks().clear(guest) }

// Marks lists every mark, for status and the watcher's resync. Damaged
// files are skipped.
func (d Dir) Marks() ([]Mark, error) {
	guests, err := d.marks().guests()
	if err != nil {
		return nil, err
	}
	var out []Mark
	for _, guest := range guests {
		if m, ok, err := d.GetMark(guest); err == nil && ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// WatcherLockPath is the file the watcher holds locked while it runs.
func (d Dir) WatcherLockPath() string { return filepath.Join(string(d), "watch.lock") }

// Watcher is a running watcher as its lock file describes it.
type Watcher struct {
	PID   int
	Since time.Time
}

// ReloadPath is where the package's post-install script records that it
// told a libvirt daemon to reload: "PID UNIX-TIME". A daemon started before
// the hooks were installed runs them only after such a reload.
func (d Dir) ReloadPath(daemon string) string {
	return filepath.Join(string(d), "reloaded-"+daemon)
}

// Reload reads a daemon's reload record; ok is false when there is none or
// it is damaged.
func (d Dir) Reload(daemon string) (pid int, at time.Time, ok bool) {
	data, err := os.ReadFile(d.ReloadPath(daemon))
	if err != nil {
		return 0, time.Time{}, false
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, time.Time{}, false
	}
	pid, perr := strconv.Atoi(f[0])
	sec, serr := strconv.ParseInt(f[1], 10, 64)
	if perr != nil || serr != nil {
		return 0, time.Time{}, false
	}
	return pid, time.Unix(sec, 0), true
}

// HooksSincePath is where the package's pre-install script records, on an
// upgrade, since when its hooks have been installed: "UNIX-TIME", the
// ctime of the qemu hook it found. The upgrade replaces the hook files,
// and their new ctime would make a daemon that has run them since before
// the upgrade look as if it had started before them.
func (d Dir) HooksSincePath() string { return filepath.Join(string(d), "hooks-since") }

// HooksSince reads that record; ok is false when there is none or it is
// damaged.
func (d Dir) HooksSince() (at time.Time, ok bool) {
	data, err := os.ReadFile(d.HooksSincePath())
	if err != nil {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}
