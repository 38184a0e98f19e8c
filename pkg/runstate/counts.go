package runstate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HookRunsPath is the file of hook run counts: one line per operation,
// "OPERATION RUNS FAILED". Only a process holding the hooks' lock rewrites
// it, so counting needs no lock of its own and costs no extra process.
func (d Dir) HookRunsPath() string { return filepath.Join(string(d), "hook-runs") }

// RunCount is how often a hook operation ran and how often it failed.
type RunCount struct {
	Runs   uint64
	Failed uint64
}

// HookRuns reads the counts, by operation. No file means no runs since
// boot. Lines that do not parse are skipped. The file is rewritten in
// place, so it is read until two reads agree: a read never returns half
// of a rewrite.
func (d Dir) HookRuns() (map[string]RunCount, error) {
	var prev []byte
	for try := 0; ; try++ {
		data, err := os.ReadFile(d.HookRunsPath())
		if errors.Is(err, fs.ErrNotExist) {
			return map[string]RunCount{}, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", d.HookRunsPath(), err)
		}
		if (try > 0 && bytes.Equal(data, prev)) || try == 10 {
			return parseRuns(data), nil
		}
		prev = data
	}
}

func parseRuns(data []byte) map[string]RunCount {
	out := map[string]RunCount{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		runs, err1 := strconv.ParseUint(f[1], 10, 64)
		failed, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out[f[0]] = RunCount{Runs: runs, Failed: failed}
	}
	return out
}

// CountHookRun adds one run of operation op (a failed one when failed) to
// the counts. The caller must hold the hooks' lock: the file is read,
// incremented and written back in place (counts only grow, so the new
// text covers the old), which costs a hook run a few microseconds where a
// temporary file and a rename cost a journal commit on some filesystems.
func (d Dir) CountHookRun(op string, failed bool) error {
	if op == "" || strings.ContainsAny(op, " \t\n") {
		return fmt.Errorf("hook operation %q cannot be counted", op)
	}
	path := d.HookRunsPath()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(string(d), 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	runs := parseRuns(data)
	c := runs[op]
	c.Runs++
	if failed {
		c.Failed++
	}
	runs[op] = c
	ops := make([]string, 0, len(runs))
	for o := range runs {
		ops = append(ops, o)
	}
	slices.Sort(ops)
	var b strings.Builder
	for _, o := range ops {
		fmt.Fprintf(&b, "%s %d %d\n", o, runs[o].Runs, runs[o].Failed)
	}
	if _, err := f.WriteAt([]byte(b.String()), 0); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if b.Len() < len(data) { // a damaged line was dropped
		if err := f.Truncate(int64(b.Len())); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	return nil
}

// ReconcilePath is the record of the last reconcile that changed or
// checked the host (not a dry run).
func (d Dir) ReconcilePath() string { return filepath.Join(string(d), "reconcile.json") }

// Reconcile is the outcome of one reconcile run.
type Reconcile struct {
	Time time.Time `json:"time"`
	// Guests is how many running guests it looked at, Failed how many of
	// them it could not manage; Err is set when it could not run at all.
	Guests int    `json:"guests"`
	Failed int    `json:"failed"`
	Err    string `json:"error,omitempty"`
}

// OK reports whether the reconcile managed every running guest.
func (r Reconcile) OK() bool { return r.Failed == 0 && r.Err == "" }

// PutReconcile records the outcome of a reconcile, replacing the last one.
func (d Dir) PutReconcile(r Reconcile) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return d.writeAtomic(d.ReconcilePath(), append(data, '\n'))
}

// LastReconcile reads the last reconcile's record; ok is false when no
// reconcile ran since boot.
func (d Dir) LastReconcile() (r Reconcile, ok bool, err error) {
	data, err := os.ReadFile(d.ReconcilePath())
	if errors.Is(err, fs.ErrNotExist) {
		return Reconcile{}, false, nil
	}
	if err != nil {
		return Reconcile{}, false, fmt.Errorf("reading %s: %w", d.ReconcilePath(), err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return Reconcile{}, false, fmt.Errorf("%s is damaged: %w", d.ReconcilePath(), err)
	}
	return r, true, nil
}

// writeAtomic replaces path with data by a rename in the same directory.
func (d Dir) writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", d, err)
	}
	tmp, err := os.CreateTemp(string(d), "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
