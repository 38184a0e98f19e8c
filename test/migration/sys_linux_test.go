package migration

import (
	"errors"
	"syscall"
)

var sigterm = syscall.SIGTERM

func syscallKill(pid int) { syscall.Kill(pid, syscall.SIGKILL) }

func errorsJoin(errs ...error) error { return errors.Join(errs...) }
