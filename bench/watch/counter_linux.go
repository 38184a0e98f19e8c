package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/fdbhook/fdbhook/bench/testbed"
)

// fdbCounter counts the bridge FDB notifications the kernel sends in a
// namespace, on a netlink socket of the benchmark's own (no filter, a
// 64 MiB receive buffer): the "sent" figure the watcher's socket is
// compared with. It parses only message headers.
type fdbCounter struct {
	fd   int
	sent atomic.Int64
	// lost counts the ENOBUFS the counter itself met: when it is not
	// zero, sent is a lower bound.
	lost atomic.Int64
	stop atomic.Bool
	wg   sync.WaitGroup
}

// countFDB starts counting in lab's namespace.
func countFDB(lab *testbed.Lab) (*fdbCounter, error) {
	c := &fdbCounter{fd: -1}
	err := lab.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		c.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
			return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
		}
		tv := unix.Timeval{Usec: 100_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1 << (unix.RTNLGRP_NEIGH - 1)})
	})
	if err != nil {
		if c.fd >= 0 {
			unix.Close(c.fd)
		}
		return nil, fmt.Errorf("FDB notification counter: %w", err)
	}
	c.wg.Add(1)
	go c.read()
	return c, nil
}

func (c *fdbCounter) read() {
	defer c.wg.Done()
	buf := make([]byte, 1<<16)
	for !c.stop.Load() {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		switch {
		case errors.Is(err, unix.ENOBUFS):
			c.lost.Add(1)
			continue
		case err != nil:
			continue // the receive timeout: look at stop again
		}
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b[0:4]))
			typ := binary.NativeEndian.Uint16(b[4:6])
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				break
			}
			if (typ == unix.RTM_NEWNEIGH || typ == unix.RTM_DELNEIGH) && l > unix.NLMSG_HDRLEN && b[unix.NLMSG_HDRLEN] == unix.AF_BRIDGE {
				c.sent.Add(1)
			}
			b = b[min((l+3)&^3, len(b)):]
		}
	}
}

// close stops counting and returns the count.
func (c *fdbCounter) close() (sent, lost int64) {
	c.stop.Store(true)
	c.wg.Wait()
	unix.Close(c.fd)
	return c.sent.Load(), c.lost.Load()
}
