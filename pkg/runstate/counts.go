package runstate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
// boot. Lines that do not parse are skipped.
func (d Dir) HookRuns() (map[string]RunCount, error) {
	data, err := os.ReadFile(d.HookRunsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]RunCount{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", d.HookRunsPath(), err)
	}
	return parseRuns(data), nil
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
// incremented and replaced by a rename, so readers never see half a file
// but two writers at once would lose a count.
func (d Dir) CountHookRun(op string, failed bool) error {
	if op == "" || strings.ContainsAny(op, " \t\n") {
		return fmt.Errorf("hook operation %q cannot be counted", op)
	}
	data, err := os.ReadFile(d.HookRunsPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", d.HookRunsPath(), err)
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
	return d.writeAtomic(d.HookRunsPath(), []byte(b.String()))
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
