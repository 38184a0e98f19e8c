package lab

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"

	"github.com/vishvananda/netlink"
)

// Flags are a bridge port's learning, unicast flood and locked flags.
type Flags struct{ Learning, Flood, Locked bool }

func (f Flags) String() string {
	onOff := map[bool]string{true: "on", false: "off"}
	return fmt.Sprintf("learning %s flood %s locked %s", onOff[f.Learning], onOff[f.Flood], onOff[f.Locked])
}

// ReadPortFlags reads port's flags through the netlink library (h, a handle
// in the port's namespace) and, as an independent witness, through
// iproute2's `bridge -d link show dev PORT` (bridge runs `bridge ARGS...`
// in that namespace); it is an error when they disagree, or either cannot
// tell. Locked comes from iproute2 (off where it does not show it: a
// kernel without locked ports). A watcher may change the flags between the
// two reads: they are compared only when they held still (HeldStill).
func ReadPortFlags(h *netlink.Handle, bridge func(args ...string) (string, error), port string) (Flags, error) {
	var out string
	ip, nl, still, err := HeldStill(func() (Flags, error) { return protinfo(h, port) }, func() (Flags, error) {
		var err error
		if out, err = bridge("-d", "link", "show", "dev", port); err != nil {
			return Flags{}, fmt.Errorf("bridge -d link show dev %s: %w", port, err)
		}
		return parseBridgeLink(port, out)
	})
	switch {
	case err != nil:
		return Flags{}, err
	case !still:
		return Flags{}, fmt.Errorf("%s: the flags changed during each of %d reads", port, stableReads)
	case ip.Learning != nl.Learning || ip.Flood != nl.Flood:
		return Flags{}, fmt.Errorf("%s: netlink says learning %v flood %v (twice), iproute2 says %s between the two:\n%s",
			port, nl.Learning, nl.Flood, ip, out)
	}
	return ip, nil
}

// stableReads bounds HeldStill's rounds.
const stableReads = 10

// HeldStill reads own, then witness, then own again, until the two reads
// of own around the witness's are equal (stableReads rounds at most): what
// a watcher may change between two reads is compared with a witness only
// when it held still. It returns the witness's read and own's; still is
// false when own changed in every round. An error of either read ends it.
func HeldStill[T comparable, W any](own func() (T, error), witness func() (W, error)) (w W, v T, still bool, err error) {
	if v, err = own(); err != nil {
		return w, v, false, err
	}
	for range stableReads {
		if w, err = witness(); err != nil {
			return w, v, false, err
		}
		again, err := own()
		if err != nil {
			return w, v, false, err
		}
		if again == v {
			return w, v, true, nil
		}
		v = again
	}
	return w, v, false, nil
}

// protinfo is port's learning and flood as the netlink library reads them.
func protinfo(h *netlink.Handle, port string) (Flags, error) {
	link, err := h.LinkByName(port)
	if err != nil {
		return Flags{}, fmt.Errorf("netlink: %s: %w", port, err)
	}
	pi, err := h.LinkGetProtinfo(link)
	if err != nil {
		return Flags{}, fmt.Errorf("netlink: protinfo of %s: %w", port, err)
	}
	return Flags{Learning: pi.Learning, Flood: pi.Flood}, nil
}

// parseBridgeLink reads the flags from `bridge -d link show dev PORT`.
func parseBridgeLink(port, out string) (Flags, error) {
	ip := Flags{}
	for _, f := range []struct {
		name     string
		to       *bool
		optional bool
	}{{"learning", &ip.Learning, false}, {"flood", &ip.Flood, false}, {"locked", &ip.Locked, true}} {
		// Whole words: "flood" must not match "mcast_flood" or "bcast_flood".
		m := regexp.MustCompile(`(?:^|\s)` + f.name + ` (on|off)\b`).FindStringSubmatch(out)
		if m == nil && !f.optional {
			return Flags{}, fmt.Errorf("no %q in bridge -d link show dev %s:\n%s", f.name, port, out)
		}
		*f.to = m != nil && m[1] == "on"
	}
	return ip, nil
}

// PortFlags is ReadPortFlags in the namespace, failing the test on an
// error.
func (n *Namespace) PortFlags(port string) Flags {
	n.tb.Helper()
	f, err := ReadPortFlags(n.Handle, func(args ...string) (string, error) {
		out, err := exec.Command("bridge", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		return string(out), nil
	}, port)
	if err != nil {
		n.tb.Fatal(err)
	}
	return f
}
