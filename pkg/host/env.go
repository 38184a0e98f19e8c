package host

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/model"
	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// Env is one run of an fdbhook program: its name, its standard streams,
// the host it acts on, its clock and its kernel connection. main fills it
// from the process and the real host (FromProcess, and the program's own
// OpenKernel); tests with buffers, temporary paths and a fake kernel.
type Env struct {
	// Program is the binary's name in messages and --help.
	Program string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	Host
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// OpenKernel connects to the kernel (one connection per run).
	OpenKernel func() (model.Kernel, error)
}

// FromProcess is the process's run: its name, stdio and environment.
// OpenKernel is left to the caller.
func FromProcess() Env {
	return Env{Program: filepath.Base(os.Args[0]), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Host: FromEnv(os.Getenv)}
}

// Clock is the time now.
func (e *Env) Clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// LoadConfig reads the configuration; a bad file is an ExitError with
// ExitConfig.
func (e *Env) LoadConfig() (*config.Config, error) {
	cfg, err := config.Load(e.Config)
	if err != nil {
		return nil, &ExitError{Code: ExitConfig, Err: err}
	}
	return cfg, nil
}

// TakeLock takes the lock of runs that change the kernel (none when the
// host has no lock path), waiting at most the host's timeout or until ctx
// ends. unlock releases it; so does the process's exit.
func (e *Env) TakeLock(ctx context.Context) (unlock func(), err error) {
	return runstate.Lock(ctx, e.Lock, e.LockTimeout)
}
