package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultNotifyBuffer is the receive buffer a Notifier asks for. The kernel
// counts what a queued notification costs (its skb, about 1 KiB for an
// FDB entry and 2–4 KiB for a link), not its size: 4 MiB holds the link
// notifications of a few hundred guests starting at once. The churn of a
// busy segment does not reach it: the filter drops that.
const DefaultNotifyBuffer = 4 << 20

// notifyReadSize is the buffer one datagram is read into; a notification
// is one message, far smaller.
const notifyReadSize = 64 << 10

// ErrOverrun is what Receive returns when notifications were lost: the
// socket's buffer was full and the kernel dropped some (ENOBUFS), or a
// datagram did not fit the read buffer. The socket goes on.
var ErrOverrun = fmt.Errorf("notifications lost: %w", unix.ENOBUFS)

// Notifier is a socket subscribed to the link and neighbour notifications
// of one network namespace (RTNLGRP_LINK, RTNLGRP_NEIGH), for the watcher.
// Its socket filter drops in the kernel the bridge FDB notifications no
// FDBRule keeps (and ARP and NDP neighbours); Receive parses what comes
// through in place, from one reused buffer, and hands over link
// notifications and the FDB notifications the rules keep.
//
// Receive is called by one goroutine; Watch, SetDeadline and Close may be
// called from any.
type Notifier struct {
	f  *os.File
	rc syscall.RawConn
	// buf, and what the last read put in it (read is called by the
	// runtime's poller when the socket is readable): n bytes, or errno,
	// from the kernel unless from says otherwise.
	buf     []byte
	n       int
	errno   syscall.Errno
	from    unix.RawSockaddrNetlink
	fromLen uint32
	readFn  func(uintptr) bool
	note    Note
	watch   atomic.Pointer[Watchlist]
	mu      sync.Mutex // serialises Watch
	closed  atomic.Bool
	// RcvBuf is the receive buffer the kernel granted (SO_RCVBUF: twice
	// what was asked, for its bookkeeping); Forced is set when
	// SO_RCVBUFFORCE set it, past net.core.rmem_max.
	RcvBuf int
	Forced bool
	// Counts, kept by Receive (read them from its goroutine).
	received, kept, overruns int64
}

// OpenNotifier subscribes to the notifications of namespace ns
// (netns.None(): the current one) with a receive buffer of rcvbuf bytes
// (0: DefaultNotifyBuffer). Until Watch names ports and MACs, its filter
// keeps the rules that need none: static and locked entries.
func OpenNotifier(ns netns.NsHandle, rcvbuf int) (*Notifier, error) {
	if rcvbuf <= 0 {
		rcvbuf = DefaultNotifyBuffer
	}
	// The library opens and binds the socket in ns (a thread enters ns to
	// do so); this package reads it.
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("opening rtnetlink socket: %w", err)
	}
	fd, err := unix.FcntlInt(uintptr(s.GetFd()), unix.F_DUPFD_CLOEXEC, 0)
	s.Close()
	if err != nil {
		return nil, fmt.Errorf("rtnetlink socket: %w", err)
	}
	n := &Notifier{buf: make([]byte, notifyReadSize)}
	if err := n.setUp(sysSockopts{}, fd, rcvbuf); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// The socket is non-blocking: the file waits for it in the runtime's
	// poller, and Close or a deadline ends a wait.
	n.f = os.NewFile(uintptr(fd), "rtnetlink notifications")
	if n.rc, err = n.f.SyscallConn(); err != nil {
		n.f.Close()
		return nil, err
	}
	n.readFn = n.read
	return n, nil
}

// setUp sizes the buffer and attaches the first filter, then joins the
// groups: nothing arrives unfiltered.
func (n *Notifier) setUp(so sockopts, fd, rcvbuf int) error {
	var err error
	if n.RcvBuf, n.Forced, err = sizeReceiveBuffer(so, fd, rcvbuf); err != nil {
		return err
	}
	if _, err := attachRules(so, fd, FDBRules, nil); err != nil {
		return err
	}
	for _, g := range []int{unix.RTNLGRP_LINK, unix.RTNLGRP_NEIGH} {
		if err := so.setInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, g); err != nil {
			return fmt.Errorf("joining rtnetlink group %d: %w", g, err)
		}
	}
	return nil
}

// sockopts are the socket options a Notifier sets (a fake in tests).
type sockopts interface {
	setInt(fd, level, opt, value int) error
	getInt(fd, level, opt int) (int, error)
	attachFilter(fd int, prog []unix.SockFilter) error
}

type sysSockopts struct{}

func (sysSockopts) setInt(fd, level, opt, v int) error { return unix.SetsockoptInt(fd, level, opt, v) }

func (sysSockopts) getInt(fd, level, opt int) (int, error) { return unix.GetsockoptInt(fd, level, opt) }

func (sysSockopts) attachFilter(fd int, prog []unix.SockFilter) error {
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
		&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]})
}

// sizeReceiveBuffer asks for want bytes of receive buffer: with
// SO_RCVBUFFORCE, which goes past net.core.rmem_max (208 KiB on most
// hosts) but needs CAP_NET_ADMIN, and where that is refused with
// SO_RCVBUF, which the kernel caps at rmem_max. It returns what the kernel
// granted, read back.
func sizeReceiveBuffer(so sockopts, fd, want int) (granted int, forced bool, err error) {
	forced = true
	if err := so.setInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want); err != nil {
		forced = false
		if err := so.setInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, want); err != nil {
			return 0, false, fmt.Errorf("setting the notification socket's receive buffer: %w", err)
		}
	}
	granted, err = so.getInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return 0, false, fmt.Errorf("reading the notification socket's receive buffer: %w", err)
	}
	return granted, forced, nil
}

// FilterReport says what the socket filter applies after Watch.
type FilterReport struct {
	// Rules are the FDBRules the kernel applies, by name; Left those left
	// out because the program did not fit (the kernel's limit of 4096
	// instructions, or net.core.optmem_max), and why: their notifications
	// no longer reach the socket.
	Rules        []string
	Left         []string
	Why          error
	Instructions int
}

func (r FilterReport) String() string {
	s := fmt.Sprintf("%d instructions, rules: %s", r.Instructions, strings.Join(r.Rules, ", "))
	if len(r.Left) > 0 {
		s += fmt.Sprintf("; left out: %s (%v)", strings.Join(r.Left, ", "), r.Why)
	}
	return s
}

// Watch compiles the socket filter for wl and attaches it in place of the
// previous one; Receive classifies against wl from now on. When the
// program does not fit, the rules that name ports or MACs are left out of
// it, the last first, until it does.
func (n *Notifier) Watch(wl *Watchlist) (FilterReport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.watch.Store(wl)
	var rep FilterReport
	var err error
	cerr := n.rc.Control(func(fd uintptr) { rep, err = attachRules(sysSockopts{}, int(fd), FDBRules, wl) })
	return rep, errors.Join(cerr, err)
}

// attachRules attaches the filter for rules and wl, leaving out the rules
// that name ports or MACs, the last first, while it does not fit.
func attachRules(so sockopts, fd int, rules []FDBRule, wl *Watchlist) (FilterReport, error) {
	rules = append([]FDBRule(nil), rules...)
	var rep FilterReport
	for {
		prog, err := filterProgram(rules, wl)
		if err == nil && len(prog) > unix.BPF_MAXINSNS {
			err = fmt.Errorf("%d instructions, more than the kernel's %d", len(prog), unix.BPF_MAXINSNS)
		}
		if err == nil {
			err = so.attachFilter(fd, prog)
		}
		if err == nil {
			for _, r := range rules {
				rep.Rules = append(rep.Rules, r.Name)
			}
			rep.Instructions = len(prog)
			return rep, nil
		}
		rep.Why = errors.Join(rep.Why, err)
		last := -1
		for i, r := range rules {
			if r.Watched != watchNone {
				last = i
			}
		}
		if last < 0 {
			return rep, fmt.Errorf("attaching the notification socket's filter: %w", err)
		}
		rep.Left = append([]string{rules[last].Name}, rep.Left...)
		rules = append(rules[:last], rules[last+1:]...)
	}
}

// read is called by the poller when the socket may be readable; false
// means it was not (wait again).
func (n *Notifier) read(fd uintptr) bool {
	for {
		n.fromLen = unix.SizeofSockaddrNetlink
		// MSG_TRUNC: the datagram's own length, even when longer than buf.
		r, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&n.buf[0])), uintptr(len(n.buf)),
			unix.MSG_TRUNC, uintptr(unsafe.Pointer(&n.from)), uintptr(unsafe.Pointer(&n.fromLen)))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		n.n, n.errno = int(r), e
		return true
	}
}

// Receive waits for the next datagram and calls handle for each link
// notification in it and each bridge FDB notification a rule keeps. It
// returns ErrOverrun when notifications were lost since the last call,
// os.ErrDeadlineExceeded past SetDeadline, and an error wrapping
// os.ErrClosed after Close. It allocates nothing.
func (n *Notifier) Receive(handle func(*Note)) error {
	if err := n.rc.Read(n.readFn); err != nil {
		if n.closed.Load() {
			return fmt.Errorf("reading notifications: %w", os.ErrClosed)
		}
		return err
	}
	switch {
	case n.errno == unix.ENOBUFS || n.errno == 0 && n.n > len(n.buf):
		n.overruns++
		return ErrOverrun
	case n.errno != 0:
		return fmt.Errorf("reading notifications: %w", n.errno)
	case n.from.Pid != 0:
		return nil // not from the kernel
	}
	wl := n.watch.Load()
	for b := n.buf[:n.n]; len(b) >= unix.NLMSG_HDRLEN; {
		l := int(binary.NativeEndian.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			break
		}
		n.received++
		if n.keep(b[:l], wl) {
			n.kept++
			handle(&n.note)
		}
		b = b[min(nlmAlign(l), len(b)):]
	}
	return nil
}

// keep parses one message into n.note and says whether to hand it over.
func (n *Notifier) keep(m []byte, wl *Watchlist) bool {
	if !parseNote(m, &n.note) {
		return false
	}
	if n.note.Kind == NoteLink {
		return true
	}
	n.note.Rule = classify(FDBRules, &n.note, wl)
	return n.note.Rule >= 0
}

// Counts returns how many notifications Receive read from the socket,
// how many of them it handed over, and how often notifications were lost.
func (n *Notifier) Counts() (received, kept, overruns int64) {
	return n.received, n.kept, n.overruns
}

// SetDeadline makes a Receive waiting past t return os.ErrDeadlineExceeded
// (the zero time: no deadline).
func (n *Notifier) SetDeadline(t time.Time) error { return n.f.SetReadDeadline(t) }

// Close closes the socket; a Receive waiting returns.
func (n *Notifier) Close() error {
	n.closed.Store(true)
	return n.f.Close()
}
