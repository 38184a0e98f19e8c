package lab

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// What a packet socket bound to one device (by ifindex) does when the
// device changes, read from the kernel's af_packet.c (packet_do_bind,
// packet_notifier) and checked by capture_linux_test.go:
//   - the device goes down: the socket reports ENETDOWN once, to the next
//     receive, and receives nothing while the device is down; once the
//     device is up again the socket receives as before, on its own;
//   - the device is not up yet when the socket is bound to it (a tap
//     libvirt has just made): the same ENETDOWN, and the socket receives
//     once the device is up;
//   - the device is deleted: the same ENETDOWN, then the socket is bound
//     to no device at all and receives nothing, ever, without another
//     error, also when a device of the same name appears (it has another
//     ifindex).
// So a counter that stops at the first receive error stops counting at the
// first down and up (or at once, bound before its device was up), and one
// that carries on cannot tell from its socket that its device is gone: it
// would count a silent zero. A device follows the counter's device through
// the kernel's link notifications, logs what happens to it, and checks it
// by name when the counter is read.

// LinkChange is one change of a followed device, as the kernel announced
// it (or as its packet socket reported it).
type LinkChange struct {
	At      time.Time
	Ifindex int
	// What is "made" (a LinkLog's first sight of an ifindex), "down",
	// "up", "carrier off", "carrier on", "ENETDOWN" (a packet socket's
	// report), "deleted" or "renamed to NAME".
	What string
}

// device follows the device named name in ns, by the ifindex it had when
// a counter bound a packet socket to it.
type device struct {
	tb    testing.TB
	name  string
	where string // the namespace, for messages
	index int
	h     *netlink.Handle

	mu         sync.Mutex
	flags      uint32 // IFF_UP and IFF_LOWER_UP as last seen
	changes    []LinkChange
	lost       string // why it is no longer followed, "" while it is
	lostAt     time.Time
	expectGone bool
	stop       func() // ends the link notifications
}

// followDevice starts following name in ns: it subscribes to the link
// notifications first, so that nothing that happens once the caller
// binds its socket to the returned ifindex is missed. A device that is
// not up yet (a tap libvirt has just made) is recorded as down: a socket
// bound to it reports ENETDOWN and receives once it is up.
func followDevice(tb testing.TB, ns netns.NsHandle, where, name string) (*device, error) {
	// NETLINK_ROUTE alone: test/vm's kernel has no xfrm or netfilter
	// netlink, which a handle for every family would open.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", where, err)
	}
	d := &device{tb: tb, name: name, where: where, h: h}
	stop, err := subscribeLinks(ns, d.update, d.notificationsLost)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("link notifications in %s: %w", where, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		stop()
		h.Close()
		return nil, fmt.Errorf("%s in %s: %w", name, where, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stop, d.index = stop, l.Attrs().Index
	d.flags = l.Attrs().RawFlags & (unix.IFF_UP | unix.IFF_LOWER_UP)
	if d.flags&unix.IFF_UP == 0 {
		d.record("down")
	}
	return d, nil
}

// subscribeLinks hands every link notification of ns to fn, from a
// goroutine of its own, until stop, which returns once fn has returned
// for the last time. lost is called when the subscription ends early (an
// overrun: notifications were lost).
func subscribeLinks(ns netns.NsHandle, fn func(netlink.LinkUpdate), lost func(error)) (stop func(), err error) {
	done, ended := make(chan struct{}), make(chan struct{})
	updates := make(chan netlink.LinkUpdate, 64)
	err = netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		Namespace: &ns,
		ErrorCallback: func(err error) {
			select {
			case <-done: // stop closed the subscription's socket
			default:
				lost(err)
			}
		}})
	if err != nil {
		return nil, err
	}
	go func() {
		defer close(ended)
		for u := range updates {
			fn(u)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-ended }) }, nil
}

// flagChanges names what changed between two IFF_ flag sets: "up",
// "down", "carrier on", "carrier off".
func flagChanges(was, is uint32) []string {
	var out []string
	if (was^is)&unix.IFF_UP != 0 {
		out = append(out, map[bool]string{true: "up", false: "down"}[is&unix.IFF_UP != 0])
	}
	if (was^is)&unix.IFF_LOWER_UP != 0 {
		out = append(out, map[bool]string{true: "carrier on", false: "carrier off"}[is&unix.IFF_LOWER_UP != 0])
	}
	return out
}

// String names the device in messages: "fdbmigt0 (ifindex 7) in NS".
func (d *device) String() string {
	return fmt.Sprintf("%s (ifindex %d) in %s", d.name, d.index, d.where)
}

// update records what one link notification says of the device.
func (d *device) update(u netlink.LinkUpdate) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if int(u.Index) != d.index || d.lost != "" || u.Family == unix.AF_BRIDGE {
		return // AF_BRIDGE: the bridge's news of its port (a DELLINK when it leaves the bridge)
	}
	if u.Header.Type == unix.RTM_DELLINK {
		d.record("deleted")
		d.loseLocked("it was deleted")
		return
	}
	if name := u.Attrs().Name; name != "" && name != d.name {
		d.record("renamed to " + name)
		d.loseLocked("it was renamed to " + name)
		return
	}
	for _, what := range flagChanges(d.flags, u.Flags) {
		d.record(what)
	}
	d.flags = u.Flags & (unix.IFF_UP | unix.IFF_LOWER_UP)
}

// record notes and logs one change; d.mu is held.
func (d *device) record(what string) {
	c := LinkChange{At: time.Now(), Ifindex: d.index, What: what}
	d.changes = append(d.changes, c)
	d.tb.Logf("%s: %s at %s", d, what, c.At.Format("15:04:05.000"))
}

// loseLocked marks the device as no longer followed; d.mu is held.
func (d *device) loseLocked(why string) {
	if d.lost == "" {
		d.lost, d.lostAt = why, time.Now()
	}
}

// socketDown notes the ENETDOWN a packet socket on the device reported.
func (d *device) socketDown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.record("ENETDOWN")
}

// notificationsLost is the subscription's error callback: after an error
// the subscription ends, and the device is checked by name only, when the
// counter is read.
func (d *device) notificationsLost(err error) {
	d.tb.Logf("%s: link notifications ended (%v): the device is checked by name only from here", d, err)
}

// receive reads one frame from fd, a packet socket bound to the device.
// ok is false when nothing came before the socket's receive timeout, when
// a signal interrupted, or when the socket reported that the device went
// down (noted: the socket receives again once the device is up). Any
// other error ends the counting: the device is then checked by name, and
// the error says what became of it.
func (d *device) receive(fd int, buf []byte) (n int, outgoing, ok bool, err error) {
	n, from, err := unix.Recvfrom(fd, buf, 0)
	switch {
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		return 0, false, false, nil
	case errors.Is(err, unix.ENETDOWN):
		d.socketDown()
		return 0, false, false, nil
	case err != nil:
		why := "receiving failed: " + err.Error()
		if lost := d.check(); lost != "" {
			why += "; " + lost
		}
		d.mu.Lock()
		d.loseLocked(why)
		d.mu.Unlock()
		return 0, false, false, fmt.Errorf("%s: %s", d, why)
	}
	ll, _ := from.(*unix.SockaddrLinklayer)
	return n, ll != nil && ll.Pkttype == unix.PACKET_OUTGOING, true, nil
}

// check asks the kernel by name whether the device is still the one the
// socket is bound to, and returns why not, or "".
func (d *device) check() string {
	l, err := d.h.LinkByName(d.name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound) || errors.Is(err, unix.ENODEV):
		return "there is no " + d.name + " any more"
	case err != nil:
		return fmt.Sprintf("looking %s up: %v", d.name, err)
	case l.Attrs().Index != d.index:
		return fmt.Sprintf("%s is another device now (ifindex %d): it was deleted and made again", d.name, l.Attrs().Index)
	}
	return ""
}

// Lost returns why the device is no longer followed (deleted, renamed,
// made again under its name, a receive error), or "" while it is: the
// counter still counts every frame the device carries.
func (d *device) Lost() string {
	d.mu.Lock()
	lost := d.lost
	d.mu.Unlock()
	if lost != "" {
		return lost
	}
	if why := d.check(); why != "" {
		d.mu.Lock()
		d.loseLocked(why)
		lost = d.lost
		d.mu.Unlock()
	}
	return lost
}

// Changes returns what happened to the device so far, in order.
func (d *device) Changes() []LinkChange {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]LinkChange(nil), d.changes...)
}

// ExpectGone says the device may go away before the counter is read (a
// migrated guest's tap on the source): finish then logs it instead of
// failing the test.
func (d *device) ExpectGone() {
	d.mu.Lock()
	d.expectGone = true
	d.mu.Unlock()
}

// finish stops following and fails the test, saying what happened, when
// the device was lost while counting and that was not expected. It
// returns why the device was lost, or "".
func (d *device) finish() string {
	lost := d.Lost()
	d.stop()
	d.h.Close()
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case lost == "":
	case d.expectGone:
		d.tb.Logf("%s: %s, as expected, at %s", d, lost, d.lostAt.Format("15:04:05.000"))
	default:
		d.tb.Errorf("%s: the frame counter lost its device: %s (noticed at %s, changes %s): frames from then on were not counted",
			d, lost, d.lostAt.Format("15:04:05.000"), FormatChanges(d.changes))
	}
	return lost
}

// FormatChanges writes changes as "down 12:00:00.100, up 12:00:00.120".
func FormatChanges(changes []LinkChange) string {
	if len(changes) == 0 {
		return "none"
	}
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = c.What + " " + c.At.Format("15:04:05.000")
	}
	return strings.Join(parts, ", ")
}

// bindPacket opens a packet socket for proto (network order) bound to
// device d, with a receive timeout of timeout, in ns (netns.None(): the
// test's own namespace, without entering one).
func bindPacket(ns netns.NsHandle, d *device, proto uint16, timeout time.Duration) (int, error) {
	fd := -1
	open := func() error {
		s, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		if err := unix.Bind(s, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: d.index}); err != nil {
			unix.Close(s)
			return fmt.Errorf("binding to %s: %w", d, err)
		}
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		if err := unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			unix.Close(s)
			return err
		}
		fd = s
		return nil
	}
	if !ns.IsOpen() {
		return fd, open()
	}
	return fd, InNS(ns, open)
}

// LinkLog records what happens to every device called name in a
// namespace, whatever its ifindex, from the kernel's link notifications:
// `ip monitor link` for one name, with the time each notification came.
type LinkLog struct {
	name    string
	mu      sync.Mutex
	flags   map[int]uint32 // per ifindex, as last seen
	changes []LinkChange
	stop    func()
}

// WatchLinks starts a LinkLog of name in ns, from when it returns; Stop
// ends it, at the latest when tb ends.
func WatchLinks(tb testing.TB, ns netns.NsHandle, where, name string) (*LinkLog, error) {
	l := &LinkLog{name: name, flags: map[int]uint32{}}
	// A device of that name that exists already was not made now: its
	// state is known before the notifications start.
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", where, err)
	}
	defer h.Close()
	if link, err := h.LinkByName(name); err == nil {
		l.flags[link.Attrs().Index] = link.Attrs().RawFlags & (unix.IFF_UP | unix.IFF_LOWER_UP)
	}
	stop, err := subscribeLinks(ns, l.update, func(err error) {
		tb.Errorf("%s in %s: link notifications lost (%v): the log of its changes is incomplete", name, where, err)
	})
	if err != nil {
		return nil, fmt.Errorf("link notifications in %s: %w", where, err)
	}
	l.stop = stop
	tb.Cleanup(func() { l.Stop() })
	return l, nil
}

func (l *LinkLog) update(u netlink.LinkUpdate) {
	if u.Family == unix.AF_BRIDGE {
		return // the bridge's news of its port, not of the device
	}
	at, index := time.Now(), int(u.Index)
	l.mu.Lock()
	defer l.mu.Unlock()
	was, known := l.flags[index]
	if !known && u.Attrs().Name != l.name {
		return
	}
	add := func(what string) { l.changes = append(l.changes, LinkChange{At: at, Ifindex: index, What: what}) }
	if u.Header.Type == unix.RTM_DELLINK {
		add("deleted")
		delete(l.flags, index)
		return
	}
	if name := u.Attrs().Name; name != l.name {
		add("renamed to " + name)
		delete(l.flags, index)
		return
	}
	is := u.Flags & (unix.IFF_UP | unix.IFF_LOWER_UP)
	if !known {
		add("made")
		was = ^is // so that its first state is listed
	}
	for _, what := range flagChanges(was, is) {
		add(what)
	}
	l.flags[index] = is
}

// Changes returns what the log recorded so far, in order.
func (l *LinkLog) Changes() []LinkChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LinkChange(nil), l.changes...)
}

// Stop ends the log and returns what it recorded, in order.
func (l *LinkLog) Stop() []LinkChange {
	l.stop()
	return l.Changes()
}
