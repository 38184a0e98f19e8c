package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runner fork-execs one program at a time and times it from just before
// fork to just after wait4 returned: what libvirtd waits for. Standard
// input, output and error are plain files, so no goroutine copies data
// while the clock runs.
type runner struct {
	env            []string
	stdout, stderr *os.File
	inputs         map[string]*os.File
	dir            string
}

func newRunner(dir, name string, env []string) (*runner, error) {
	stdout, err := os.Create(filepath.Join(dir, name+".stdout"))
	if err != nil {
		return nil, err
	}
	stderr, err := os.Create(filepath.Join(dir, name+".stderr"))
	if err != nil {
		stdout.Close()
		return nil, err
	}
	return &runner{env: env, stdout: stdout, stderr: stderr, inputs: map[string]*os.File{}, dir: dir}, nil
}

func (r *runner) close() {
	r.stdout.Close()
	r.stderr.Close()
	for _, f := range r.inputs {
		f.Close()
	}
}

// input writes data to a file in the work directory (once) and returns it
// opened for reading: the hook's standard input.
func (r *runner) input(name string, data []byte) (*os.File, error) {
	if f, ok := r.inputs[name]; ok {
		return f, nil
	}
	path := filepath.Join(r.dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r.inputs[name] = f
	return f, nil
}

// run executes argv with stdin (nil: /dev/null) and returns the elapsed
// time. A non-zero exit, or anything on stdout when quiet is set (a hook
// must never write there), is an error that carries the child's stderr.
func (r *runner) run(argv []string, stdin *os.File, quiet bool) (time.Duration, error) {
	d, code, err := r.runCode(argv, stdin)
	if err != nil {
		return d, err
	}
	if code != 0 {
		return d, fmt.Errorf("%s: exit status %d: %s", strings.Join(argv, " "), code, r.stderrText())
	}
	if quiet {
		if st, err := r.stdout.Stat(); err != nil {
			return d, err
		} else if st.Size() > 0 {
			return d, fmt.Errorf("%s wrote %d bytes to stdout (a hook must print nothing there)", strings.Join(argv, " "), st.Size())
		}
	}
	return d, nil
}

// runCode is run without judging the exit code, which it returns.
func (r *runner) runCode(argv []string, stdin *os.File) (time.Duration, int, error) {
	if stdin != nil {
		if _, err := stdin.Seek(0, io.SeekStart); err != nil {
			return 0, 0, err
		}
	}
	for _, f := range []*os.File{r.stdout, r.stderr} {
		if err := f.Truncate(0); err != nil {
			return 0, 0, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return 0, 0, err
		}
	}
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Env: r.env, Stdout: r.stdout, Stderr: r.stderr}
	if stdin != nil {
		cmd.Stdin = stdin
	}
	t0 := time.Now()
	err := cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	d := time.Since(t0)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return d, ee.ExitCode(), nil
	}
	if err != nil {
		return d, 0, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, r.stderrText())
	}
	return d, 0, nil
}

func (r *runner) stderrText() string {
	b, _ := os.ReadFile(r.stderr.Name())
	return strings.TrimSpace(string(b))
}

// output runs a command that is not timed and returns its stdout and exit
// code; err is only for failures to run it at all.
func output(env []string, argv ...string) (string, int, error) {
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return out.String(), -1, err
	}
	return out.String(), 0, nil
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
