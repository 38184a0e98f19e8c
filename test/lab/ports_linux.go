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
// kernel without locked ports).
//
// The two reads are moments apart, and a watcher may change the flags
// between them: netlink is read again after iproute2, and only when both
// netlink reads agree is a disagreement with iproute2 an error. Flags
// that change during every one of stableReads attempts are an error too.
func ReadPortFlags(h *netlink.Handle, bridge func(args ...string) (string, error), port string) (Flags, error) {
	before, err := protinfo(h, port)
	if err != nil {
		return Flags{}, err
	}
	for range stableReads {
		out, err := bridge("-d", "link", "show", "dev", port)
		if err != nil {
			return Flags{}, fmt.Errorf("bridge -d link show dev %s: %w", port, err)
		}
		ip, err := parseBridgeLink(port, out)
		if err != nil {
			return Flags{}, err
		}
		after, err := protinfo(h, port)
		if err != nil {
			return Flags{}, err
		}
		if after != before {
			before = after // changed while being read: read again
			continue
		}
		if ip.Learning != after.Learning || ip.Flood != after.Flood {
			return Flags{}, fmt.Errorf("%s: netlink says learning %v flood %v (twice), iproute2 says %s between the two:\n%s",
				port, after.Learning, after.Flood, ip, out)
		}
		return ip, nil
	}
	return Flags{}, fmt.Errorf("%s: the flags changed during each of %d reads", port, stableReads)
}

// stableReads bounds ReadPortFlags' attempts at reading the flags while
// they do not change.
const stableReads = 10

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
