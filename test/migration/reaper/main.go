// Command reaper is the ancestor of one test host's libvirt daemons and
// guests: it runs its arguments as a child, adopts every orphan below it
// (PR_SET_CHILD_SUBREAPER) and reaps it at once, and exits when none is
// left. libvirt waits for a killed QEMU to be reaped before it runs
// "stopped end"; this machine's init does that a second or two late.
//
// On SIGTERM it sends SIGTERM to every child it has, SIGKILL to those
// still there after a grace period, and exits once all are reaped.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: reaper COMMAND [ARG...]")
		os.Exit(2)
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "reaper: PR_SET_CHILD_SUBREAPER: %v\n", err)
		os.Exit(1)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "reaper: %v\n", err)
		os.Exit(1)
	}
	first := cmd.Process.Pid
	code := 0
	go func() {
		<-term
		killChildren(unix.SIGTERM)
		time.Sleep(5 * time.Second)
		killChildren(unix.SIGKILL)
	}()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil { // ECHILD: nothing left
			os.Exit(code)
		}
		if pid == first && ws.ExitStatus() != 0 {
			code = ws.ExitStatus()
		}
	}
}

// killChildren signals every process whose parent is this one.
func killChildren(sig unix.Signal) {
	self := strconv.Itoa(os.Getpid())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// comm may hold spaces and parentheses: the fields after the last ')'.
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == self {
			unix.Kill(pid, sig)
		}
	}
}
