package runstate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// HoldWatcher takes the watcher's lock for the life of the process and
// writes the pid and start time into it. It fails at once when another
// watcher holds it. release unlocks and empties the file.
func (d Dir) HoldWatcher(now time.Time) (release func(), err error) {
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", d, err)
	}
	path := d.WatcherLockPath()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			w, _, _ := d.WatcherRunning()
			return nil, fmt.Errorf("another watcher is running (pid %d, %s)", w.PID, path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	content := fmt.Sprintf("%d %d\n", os.Getpid(), now.Unix())
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(content), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	return func() {
		f.Truncate(0)
		f.Close()
	}, nil
}

// WatcherRunning reports whether a watcher holds its lock: a process that
// died released it, whatever the file still says. It costs an open and a
// non-blocking flock, cheap enough for every hook run.
func (d Dir) WatcherRunning() (Watcher, bool, error) {
	path := d.WatcherLockPath()
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Watcher{}, false, nil
	}
	if err != nil {
		return Watcher{}, false, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
	if err == nil {
		return Watcher{}, false, nil // nobody holds it; closing unlocks
	}
	if !errors.Is(err, unix.EWOULDBLOCK) {
		return Watcher{}, false, fmt.Errorf("checking %s: %w", path, err)
	}
	var w Watcher
	buf := make([]byte, 64)
	n, _ := f.ReadAt(buf, 0)
	if fields := strings.Fields(string(buf[:n])); len(fields) == 2 {
		w.PID, _ = strconv.Atoi(fields[0])
		if s, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
			w.Since = time.Unix(s, 0)
		}
	}
	return w, true, nil
}

// Lock takes the lock of runs that change the kernel, the hooks' and the
// watcher's (path; none when ""), waiting at most timeout or until ctx
// ends. unlock releases it; so does the process's exit.
func Lock(ctx context.Context, path string, timeout time.Duration) (unlock func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) || ctx.Err() != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("another fdbhook run held %s for more than %s", path, timeout)
			}
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Millisecond):
		}
	}
}
