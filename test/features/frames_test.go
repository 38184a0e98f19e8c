package features

import (
	"bytes"
	"errors"
	"net"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// etherType marks the test's frames (IEEE 802 local experimental 1), so
// that nothing else the kernel sends is mistaken for them.
const etherType = 0x88b5

// tapDev is the guest's end of a tap: what QEMU holds.
type tapDev struct{ fd int }

// openTap attaches to the existing persistent tap name in ns, as QEMU does
// with the tap libvirt made (TUNSETIFF IFF_TAP|IFF_NO_PI).
func openTap(ns netns.NsHandle, name string) (*tapDev, error) {
	fd, err := testlab.OpenTap(ns, name)
	if err != nil {
		return nil, err
	}
	return &tapDev{fd: fd}, nil
}

// send transmits frame as the guest.
func (t *tapDev) send(frame []byte) error {
	_, err := unix.Write(t.fd, frame)
	return err
}

func (t *tapDev) Close() { unix.Close(t.fd) }

// packetSock is an AF_PACKET socket on one device for the test's
// EtherType.
type packetSock struct {
	fd      int
	ifindex int
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openPacket(ns netns.NsHandle, dev string) (*packetSock, error) {
	var s *packetSock
	err := testlab.InNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(etherType)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		s = &packetSock{fd: fd, ifindex: ifi.Index}
		return nil
	})
	return s, err
}

func (s *packetSock) Close() { unix.Close(s.fd) }

// send transmits frame out of the device, as the network beyond it would.
func (s *packetSock) send(frame []byte) error {
	return unix.Sendto(s.fd, frame, 0, &unix.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: s.ifindex, Halen: 6})
}

// drain returns the markers of the test frames that arrive until one
// carrying until does, or wait passes (incoming only, not the socket's
// own). until "" drains what is queued now.
func (s *packetSock) drain(until string, wait time.Duration) ([]string, error) {
	deadline := time.Now().Add(wait)
	var got []string
	buf := make([]byte, 2048)
	for {
		left := time.Until(deadline)
		if until == "" || left <= 0 {
			left = time.Millisecond
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return got, err
		}
		n, from, err := unix.Recvfrom(s.fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			if until == "" || time.Now().After(deadline) {
				return got, nil
			}
			continue
		}
		if err != nil {
			return got, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if m, ok := marker(buf[:n]); ok {
			got = append(got, m)
			if m == until {
				return got, nil
			}
		}
	}
}

// frame builds an Ethernet frame of the test's EtherType carrying marker.
func frame(dst, src, mark string) []byte {
	d, err := net.ParseMAC(dst)
	if err != nil {
		panic(err)
	}
	s, err := net.ParseMAC(src)
	if err != nil {
		panic(err)
	}
	f := make([]byte, 0, 60)
	f = append(f, d...)
	f = append(f, s...)
	f = append(f, byte(etherType>>8), byte(etherType&0xff))
	f = append(f, "fdbt:"+mark+";"...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

func marker(f []byte) (string, bool) {
	if len(f) < 14 || f[12] != etherType>>8 || f[13] != etherType&0xff {
		return "", false
	}
	p := f[14:]
	if !bytes.HasPrefix(p, []byte("fdbt:")) {
		return "", false
	}
	end := bytes.IndexByte(p, ';')
	if end < 0 {
		return "", false
	}
	return string(p[5:end]), true
}
