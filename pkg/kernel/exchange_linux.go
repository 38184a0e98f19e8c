package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The requests of one connection are built with the netlink library's
// types (nl.NetlinkRequest and its attributes), but sent and answered here
// rather than by NetlinkRequest.Execute. Execute costs, per request, a
// deadline set on each of the socket's directions, a getsockname, a 64 KiB
// receive array and a copy of every datagram; for the small requests of a
// hook run that is most of a round trip (bench/results.md, "netlink round
// trips"). It also cannot pipeline: exchange sends several requests in one
// sendmsg and then reads the replies, each request still its own message
// with its own answer, which is what a guest with many NICs needs.

// reply is the answer to one request: the payloads of its messages of the
// wanted type, or the error the kernel acknowledged it with.
type reply struct {
	msgs [][]byte
	err  error
}

// exchange sends reqs in one sendmsg and returns their replies, in order.
// resType is the message type of the payloads wanted (0: none, only the
// acknowledgement). A dump interrupted by a concurrent change fails with
// nl.ErrDumpInterrupted, as with Execute. Waits for socket space and for
// answers are bounded by the connection's timeout; a timeout fails every
// request not answered yet.
func (c *Conn) exchange(resType uint16, reqs ...*nl.NetlinkRequest) ([]reply, error) {
	if c.fd < 0 {
		return nil, errClosed
	}
	var buf []byte
	first := c.seq + 1
	for _, r := range reqs {
		c.seq++
		r.Seq = c.seq
		buf = append(buf, r.Serialize()...)
	}
	deadline := time.Now().Add(c.timeout)
	if err := c.send(buf, deadline); err != nil {
		return nil, err
	}
	out := make([]reply, len(reqs))
	finished := make([]bool, len(reqs))
	intr := make([]bool, len(reqs))
	for pending := len(reqs); pending > 0; {
		msgs, err := c.receive(deadline)
		if err != nil {
			return nil, err
		}
		if c.received != nil {
			c.received()
		}
		for _, m := range msgs {
			i := int(m.Header.Seq) - int(first)
			if i < 0 || i >= len(reqs) || m.Header.Pid != c.pid || finished[i] {
				continue // a notification, or what follows a finished answer
			}
			intr[i] = intr[i] || m.Header.Flags&unix.NLM_F_DUMP_INTR != 0
			switch {
			case m.Header.Type == unix.NLMSG_DONE || m.Header.Type == unix.NLMSG_ERROR:
				if out[i].err = ackError(m); out[i].err != nil {
					out[i].msgs = nil
				} else if intr[i] {
					out[i].err, out[i].msgs = nl.ErrDumpInterrupted, nil
				}
				finished[i] = true
			case resType != 0 && m.Header.Type != resType:
			default:
				out[i].msgs = append(out[i].msgs, m.Data)
				// A single answer without an acknowledgement asked for
				// ends the request.
				finished[i] = m.Header.Flags&unix.NLM_F_MULTI == 0 && reqs[i].Flags&unix.NLM_F_ACK == 0
			}
			if finished[i] {
				pending--
			}
		}
	}
	return out, nil
}

// ackError turns an NLMSG_ERROR or NLMSG_DONE into the error it carries,
// with the kernel's extended-ack message when it sent one, worded as the
// netlink library words it ("errno: message").
func ackError(m syscall.NetlinkMessage) error {
	if len(m.Data) < 4 {
		return nil
	}
	errno := int32(binary.NativeEndian.Uint32(m.Data[:4]))
	if errno == 0 {
		return nil
	}
	err := error(syscall.Errno(-errno))
	rest := m.Data[4:]
	if m.Header.Flags&unix.NLM_F_ACK_TLVS == 0 || len(rest) <= syscall.SizeofNlMsghdr {
		return err
	}
	echo := (*syscall.NlMsghdr)(unsafe.Pointer(&rest[0]))
	if m.Header.Flags&unix.NLM_F_CAPPED != 0 {
		rest = rest[syscall.SizeofNlMsghdr:]
	} else if int(echo.Len) <= len(rest) {
		rest = rest[nlmAlign(int(echo.Len)):]
	} else {
		return err
	}
	for len(rest) >= syscall.SizeofRtAttr {
		a := (*syscall.RtAttr)(unsafe.Pointer(&rest[0]))
		if int(a.Len) < syscall.SizeofRtAttr || int(a.Len) > len(rest) {
			break
		}
		if a.Type == nl.NLMSGERR_ATTR_MSG {
			return fmt.Errorf("%w: %s", err, unix.ByteSliceToString(rest[syscall.SizeofRtAttr:a.Len]))
		}
		rest = rest[min(nlmAlign(int(a.Len)), len(rest)):]
	}
	return err
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// errClosed is the error of a call on a closed connection.
var errClosed = errors.New("netlink connection is closed")

// send writes buf to the kernel, waiting for socket space until deadline.
func (c *Conn) send(buf []byte, deadline time.Time) error {
	for {
		err := unix.Sendto(c.fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err != unix.EAGAIN && err != unix.EINTR {
			return err
		}
		if err := c.wait(unix.POLLOUT, deadline); err != nil {
			return err
		}
	}
}

// receive reads one datagram, waiting for it until deadline, and splits it
// into messages. The payloads are copies: the buffer is reused.
func (c *Conn) receive(deadline time.Time) ([]syscall.NetlinkMessage, error) {
	for {
		n, _, err := unix.Recvfrom(c.fd, c.rbuf, 0)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			if err := c.wait(unix.POLLIN, deadline); err != nil {
				return nil, err
			}
			continue
		case err != nil:
			return nil, err
		case n < unix.NLMSG_HDRLEN:
			return nil, fmt.Errorf("short netlink message (%d bytes)", n)
		}
		return syscall.ParseNetlinkMessage(append([]byte(nil), c.rbuf[:n]...))
	}
}

// wait polls the socket for events until deadline; past it, the error is
// EAGAIN, as a socket timeout reports it.
func (c *Conn) wait(events int16, deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.EAGAIN
		}
		fds := []unix.PollFd{{Fd: int32(c.fd), Events: events}}
		_, err := unix.Poll(fds, int(min(left.Milliseconds()+1, 1<<30)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if fds[0].Revents&(unix.POLLNVAL) != 0 {
			return errClosed
		}
		if fds[0].Revents != 0 {
			return nil
		}
	}
}

// pipelineBatch is how many writes one sendmsg of Pipeline carries. Their
// acknowledgements are small (an error one echoes the request), so a
// batch's answers fit the socket's receive buffer with room to spare.
const pipelineBatch = 32

// Pipeline runs write, which calls this connection's write methods. Those
// calls do not wait for the kernel: each returns nil and its request is
// queued, still a message of its own. Pipeline then sends the queue, a
// batch to a sendmsg, and returns each write's error in call order, as the
// kernel acknowledged it: nil for done, an error for not done. A batch the
// kernel did not answer in time (the connection's timeout) gives each of
// its writes the timeout error: those writes may or may not be done.
func (c *Conn) Pipeline(write func()) []error {
	c.queue = []queued{}
	write()
	queue := c.queue
	c.queue = nil
	errs := make([]error, len(queue))
	var reqs []*nl.NetlinkRequest
	var at []int // index in queue of each of reqs
	for i, q := range queue {
		if errs[i] = q.err; q.req != nil {
			reqs, at = append(reqs, q.req), append(at, i)
		}
	}
	for len(reqs) > 0 {
		n := min(len(reqs), pipelineBatch)
		replies, err := c.exchange(0, reqs[:n]...)
		for j := range n {
			if err != nil {
				errs[at[j]] = timeoutError(err)
			} else {
				errs[at[j]] = replies[j].err
			}
		}
		reqs, at = reqs[n:], at[n:]
	}
	return errs
}

// queued is a write of a Pipeline call: its request, or the error that
// kept it from being sent.
type queued struct {
	req *nl.NetlinkRequest
	err error
}

// fail returns err, or inside Pipeline records it as the error of a write
// that is never sent.
func (c *Conn) fail(err error) error {
	if c.queue != nil {
		c.queue = append(c.queue, queued{err: err})
		return nil
	}
	return err
}

// write sends a request that changes the kernel and waits for its
// acknowledgement, or inside Pipeline queues it.
func (c *Conn) write(req *nl.NetlinkRequest) error {
	c.forget()
	if c.queue != nil {
		req.Flags |= unix.NLM_F_ACK
		c.queue = append(c.queue, queued{req: req})
		return nil
	}
	_, err := c.execute(req, 0)
	return err
}
