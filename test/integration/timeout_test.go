package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/pkg/hook"
	"github.com/fdbhook/fdbhook/pkg/kernel"
	"github.com/fdbhook/fdbhook/pkg/model"
	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// netlinkSockets returns the fds of this process's rtnetlink sockets.
func netlinkSockets(t *testing.T) map[int]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err != nil {
			continue
		}
		dom, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
		proto, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		if err1 == nil && err2 == nil && dom == unix.AF_NETLINK && proto == unix.NETLINK_ROUTE {
			out[fd] = true
		}
	}
	return out
}

// openStarved opens a kernel.Conn whose answers the kernel will drop. Its
// socket is told not to report overruns (NETLINK_NO_ENOBUFS), its receive
// buffer is forced to the minimum and filled with link notifications
// (RTNLGRP_LINK) that nobody reads. The kernel then silently drops the
// reply and the acknowledgement of the next request: without a timeout
// the call would wait for ever.
func openStarved(t *testing.T, l *lab, timeout time.Duration) model.Kernel {
	t.Helper()
	return starve(t, l, func() (model.Kernel, error) { return kernel.Open(l.NetNS, timeout) })
}

// starve opens a connection with open (which must make it in l's
// namespace) and starves it as openStarved does.
func starve(t *testing.T, l *lab, open func() (model.Kernel, error)) model.Kernel {
	t.Helper()
	before := netlinkSockets(t)
	c, err := open()
	if err != nil {
		t.Fatalf("opening the kernel connection: %v", err)
	}
	t.Cleanup(c.Close)
	var fds []int
	for fd := range netlinkSockets(t) {
		if !before[fd] {
			fds = append(fds, fd)
		}
	}
	if len(fds) != 1 {
		t.Fatalf("want the one new rtnetlink socket of kernel.Open, found %v", fds)
	}
	fd := fds[0]
	for _, o := range []struct {
		level, opt, val int
		name            string
	}{
		{unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1, "NETLINK_NO_ENOBUFS"},
		{unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1, "SO_RCVBUFFORCE"},
		{unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, unix.RTNLGRP_NEIGH, "NETLINK_ADD_MEMBERSHIP"},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
	}
	// Small notifications fill the buffer to the last byte an
	// acknowledgement would need.
	var batch []string
	for i := range 64 {
		batch = append(batch, fmt.Sprintf("fdb replace %s dev up0 master static", mac(14, i)))
	}
	cmd := exec.Command("ip", "netns", "exec", l.Name, "bridge", "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(batch, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bridge -batch: %v: %s", err, out)
	}
	return c
}

// TestNetlinkTimeout: a kernel.Conn call that gets no answer returns an
// error after the connection's timeout instead of hanging the hook (and
// with it the guest's start). What this covers: waits for the kernel's
// answer (receive) and for socket buffer space (send). What no socket
// timeout covers: a kernel that blocks inside sendmsg, e.g. waiting for the
// rtnl lock held by another task; that is bounded only by the kernel.
func TestNetlinkTimeout(t *testing.T) {
	l := newStdLab(t)
	for _, timeout := range []time.Duration{time.Millisecond, 300 * time.Millisecond} {
		t.Run(fmt.Sprintf("unanswered call, timeout %s", timeout), func(t *testing.T) {
			c := openStarved(t, l, timeout)
			took, err := unansweredLink(t, c, timeout)
			if took < timeout || took > timeout+2*time.Second {
				t.Errorf("call returned after %s, want about the timeout %s", took, timeout)
			}
			t.Logf("unanswered Link returned after %s: %v", took.Round(time.Microsecond), err)
		})
	}
	t.Run("1ms timeout, healthy kernel", func(t *testing.T) {
		c, err := kernel.Open(l.NetNS, time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		begin := time.Now()
		br, err := c.Link("br0")
		took := time.Since(begin)
		// rtnetlink answers inside sendmsg: the reply is queued before the
		// receive starts waiting, so a 1 ms timeout never fires on a healthy
		// kernel. A timeout applied wrongly (as zero, or to the wrong call)
		// shows here as an error or a missing bridge.
		if err != nil || br == nil || br.Type != "bridge" {
			t.Errorf("Link(br0) with a 1ms timeout on a healthy kernel = %+v, %v; want the bridge", br, err)
		}
		if took > time.Second {
			t.Errorf("Link with a 1ms timeout took %s", took)
		}
		t.Logf("Link(br0) with a 1ms timeout: %v, err %v, %s", br != nil, err, took)
	})
	t.Run("closed connection", func(t *testing.T) {
		c, err := kernel.Open(l.NetNS, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		br, err := c.Link("br0")
		if err != nil || br == nil {
			t.Fatalf("Link(br0) = %v, %v", br, err)
		}
		c.Close()
		calls := map[string]func() error{
			"Link":         func() error { _, err := c.Link("up0"); return err },
			"Entries":      func() error { _, err := c.Entries(br, mac(1, 1)); return err },
			"SetPortFlags": func() error { return c.SetPortFlags(br.Index, br.Flags, false, false) },
		}
		for name, call := range calls {
			done := make(chan error, 1)
			go func() { done <- call() }()
			select {
			case err := <-done:
				if err == nil {
					t.Errorf("%s on a closed connection succeeded", name)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s on a closed connection hung", name)
			}
		}
	})
}

// TestLockTimeout: a run that cannot get the run lock (another run is
// stuck holding it) gives up after the lock timeout: a start fails with
// exit 1 and says why, a stop still exits 0, and nothing is changed.
func TestLockTimeout(t *testing.T) {
	t.Parallel()
	l := newStdLab(t)
	l.AddTap("tl1", "br0")
	p := l.inProcess(t, defaultConfig)
	p.lockWait = 200 * time.Millisecond
	f, err := os.OpenFile(p.lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	before := l.snap()
	xml := domain("fdbt-l", "", nic{MAC: mac(12, 1), Bridge: "br0", Target: "tl1"})
	r := p.run(t, xml, "fdbt-l", "start", "begin", "-")
	expectExit(t, r, 1)
	expectStderr(t, r, "fdbhook: fdbt-l: ", filepath.Base(p.lockPath))
	if r.Took < p.lockWait || r.Took > p.lockWait+3*time.Second {
		t.Errorf("start gave up after %s, want about %s", r.Took, p.lockWait)
	}
	r = p.run(t, domain("fdbt-l", "", stopped(nic{MAC: mac(12, 1), Bridge: "br0"})...), "fdbt-l", "stopped", "end", "-")
	expectExit(t, r, 0)
	l.expectUnchanged(t, "runs that could not take the lock", before)

	// Released, the same start goes through.
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	r = p.run(t, xml, "fdbt-l", "start", "begin", "-")
	expectExit(t, r, 0)
	l.expect(t, "start after the lock was released", before.managed("tl1", mac(12, 1)))
}

// TestDefaultNetlinkTimeout: the kernel connection a production run opens
// (hook.NewRunner's OpenKernel, as cmd/qemu-hook and cmd/network-hook use
// it) gives up on an unanswered call after the documented 5 s: not much
// sooner (a guest start on a busy kernel would fail) and not later (the
// start would hang for longer than promised). The connection is opened
// from a thread inside the test namespace, so it is that namespace's.
//
// Not parallel: starve finds the connection's socket as the one rtnetlink
// socket that appeared while it opened, which a parallel test could also
// open.
func TestDefaultNetlinkTimeout(t *testing.T) {
	const documented = 5 * time.Second
	l := newStdLab(t)
	c := starve(t, l, func() (k model.Kernel, err error) {
		err = testlab.InNS(l.NetNS, func() error {
			var err error
			k, err = hook.NewRunner().OpenKernel()
			return err
		})
		return k, err
	})
	took, err := unansweredLink(t, c, documented)
	if took < documented || took > documented+2*time.Second {
		t.Errorf("the production connection gave up after %s, want the documented %s", took.Round(time.Millisecond), documented)
	}
	t.Logf("production connection: unanswered Link returned after %s: %v", took.Round(time.Millisecond), err)
}

// unansweredLink calls Link on a starved connection and returns how long it
// took to fail and why. It skips when the reply fitted the starved buffer
// anyway, and fails when the error does not say the kernel did not answer,
// or when the call has not returned 10 s past timeout.
func unansweredLink(t *testing.T, c model.Kernel, timeout time.Duration) (time.Duration, error) {
	t.Helper()
	done := make(chan error, 1)
	begin := time.Now()
	go func() {
		_, err := c.Link("br0")
		done <- err
	}()
	select {
	case err := <-done:
		took := time.Since(begin)
		if err == nil {
			t.Skipf("the kernel's reply fitted the starved receive buffer: no unanswered call to time out (took %s)", took)
		}
		if !strings.Contains(err.Error(), "did not answer within the netlink timeout") {
			t.Errorf("error %q does not say the kernel did not answer in time", err)
		}
		return took, err
	case <-time.After(timeout + 10*time.Second):
		t.Fatalf("Link did not return within %s of its %s timeout", 10*time.Second, timeout)
	}
	return 0, nil
}
