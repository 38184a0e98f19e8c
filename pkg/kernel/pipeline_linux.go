package kernel

import (
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

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
