package host

import "errors"

// Exit codes, shared by the hooks, the fdbhook command and the watcher.
// libvirt treats any non-zero exit of a start hook as "do not start the
// guest"; the distinct values tell an admin or a test why.
const (
	ExitOK      = 0 // done, nothing to do, or on_error = "warn"
	ExitRefused = 1 // a managed NIC could not be managed, a problem found, a start-up failure
	ExitUsage   = 2 // bad command line
	ExitConfig  = 3 // bad configuration file
	ExitInput   = 4 // bad input (XML)
)

// ExitError is a failure with the exit code it maps to.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the exit code for err: its ExitError's, ExitRefused for any
// other error, ExitOK for nil.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if err != nil {
		return ExitRefused
	}
	return ExitOK
}
