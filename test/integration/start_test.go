package integration

import (
	"fmt"
	"testing"
)

// t2Lab is the host of the libvirt 9.0 capture: guest t2's taps where
// libvirt put them. guest-t2-a (net0) and vnet7 (net2, network hostbr over
// br0) are on br0, vnet6 (net1, NAT network default) is on virbr0, and
// tapeth6 (net4, type ethernet) is on no bridge.
func t2Lab(t *testing.T) *lab {
	t.Helper()
	l := newStdLab(t)
	l.AddTap("guest-t2-a", "br0")
	l.AddTap("vnet6", "virbr0")
	l.AddTap("vnet7", "br0")
	l.AddTap("tapeth6", "")
	return l
}

const (
	t2mac1 = "52:54:00:aa:cc:01" // net0 on br0
	t2mac2 = "52:54:00:aa:cc:02" // net1 on virbr0
	t2mac3 = "52:54:00:aa:cc:03" // net2 on br0 (network hostbr)
)

// TestStartAppliesToManagedTaps: start, reconnect and attach turn learning
// and flood off on t2's two br0 taps and add a static master entry for
// each MAC on its tap; the virbr0, user and ethernet NICs and the uplink
// stay exactly as they were; a second run changes nothing.
func TestStartAppliesToManagedTaps(t *testing.T) {
	for _, tc := range []struct{ op, fixture string }{
		{"start", "qemu-t2-start-begin.xml"},
		{"reconnect", "qemu-t2-reconnect-begin.xml"},
		{"attach", "qemu-t2-start-begin.xml"},
	} {
		t.Run(tc.op, func(t *testing.T) {
			t.Parallel()
			l := t2Lab(t)
			before := l.snap()
			want := before.managed("guest-t2-a", t2mac1).managed("vnet7", t2mac3)
			xml := fixture(t, tc.fixture)
			for run := 1; run <= 2; run++ {
				r := l.hook(t, call{Args: []string{"t2", tc.op, "begin", "-"}, Stdin: xml})
				expectExit(t, r, 0)
				if r.Stderr != "" {
					t.Errorf("run %d: a clean %s wrote to stderr: %q", run, tc.op, r.Stderr)
				}
				l.expect(t, fmt.Sprintf("%s begin, run %d", tc.op, run), want)
			}
			l.checkManaged(t, "guest-t2-a", t2mac1)
			l.checkManaged(t, "vnet7", t2mac3)
			l.checkNoEntries(t, t2mac2)
			if p := l.snap().Ports["up0"]; !p.Learning || !p.Flood {
				t.Errorf("uplink up0 changed: %s", p)
			}
		})
	}
}

// TestStartThroughNetwork: a NIC is managed because its libvirt network is
// listed, though its bridge is not; the other br0 NIC is then skipped.
func TestStartThroughNetwork(t *testing.T) {
	t.Parallel()
	l := t2Lab(t)
	before := l.snap()
	r := l.hook(t, call{Args: []string{"t2", "start", "begin", "-"}, Stdin: fixture(t, "qemu-t2-start-begin.xml"),
		Config: "networks = [\"hostbr\"]\n", Live: map[string]string{}})
	expectExit(t, r, 0)
	l.expect(t, "start with networks = [hostbr]", before.managed("vnet7", t2mac3))
}

// TestOnErrorWarn: with on_error = "warn" a refusal lets the guest start
// (exit 0), says why on stderr, and applies nothing, not even to the NIC
// that could be managed.
func TestOnErrorWarn(t *testing.T) {
	t.Parallel()
	warn := defaultConfig + "on_error = \"warn\"\n"
	t.Run("missing tap", func(t *testing.T) {
		l := newStdLab(t)
		l.AddTap("guest-t2-a", "br0")
		l.AddTap("vnet6", "virbr0")
		before := l.snap()
		r := l.hook(t, call{Args: []string{"t2", "start", "begin", "-"}, Stdin: fixture(t, "qemu-t2-start-begin.xml"), Config: warn})
		expectExit(t, r, 0)
		expectStderr(t, r, "warning", t2mac3, "vnet7", "on_error")
		l.expectUnchanged(t, "refused start under on_error = warn", before)
	})
	t.Run("duplicate MAC", func(t *testing.T) {
		l := newStdLab(t)
		l.AddTap("ta", "br0")
		l.AddTap("tb", "br0")
		l.AddTap("tb2", "br0")
		l.start(t, "fdbt-a", domain("fdbt-a", "", nic{MAC: mac(1, 1), Bridge: "br0", Target: "ta"}))
		before := l.snap()
		r := l.hook(t, call{Args: []string{"fdbt-b", "start", "begin", "-"}, Config: warn,
			Stdin: domain("fdbt-b", "", nic{MAC: mac(2, 1), Bridge: "br0", Target: "tb2"}, nic{MAC: mac(1, 1), Bridge: "br0", Target: "tb"})})
		expectExit(t, r, 0)
		expectStderr(t, r, "warning", "duplicate MAC")
		l.expectUnchanged(t, "duplicate MAC under on_error = warn", before)
	})
	t.Run("bad XML still exit 4", func(t *testing.T) {
		l := newStdLab(t)
		before := l.snap()
		r := l.hook(t, call{Args: []string{"t2", "start", "begin", "-"}, Stdin: []byte("<domain><name>t2</name>"), Config: warn})
		expectExit(t, r, 4)
		l.expectUnchanged(t, "bad XML under on_error = warn", before)
	})
}

// TestIgnoredOperations: operations other than start, reconnect, attach,
// stopped and release change nothing, print nothing on stdout (libvirt
// takes migrate's and restore's stdout as the new domain XML) and exit 0,
// even with a broken configuration.
func TestIgnoredOperations(t *testing.T) {
	t.Parallel()
	l := t2Lab(t)
	start := fixture(t, "qemu-t2-start-begin.xml")
	for _, tc := range []struct {
		op, subop string
		stdin     []byte
	}{
		{"prepare", "begin", fixture(t, "qemu-t2-prepare-begin.xml")},
		{"started", "begin", fixture(t, "qemu-t2-started-begin.xml")},
		{"migrate", "begin", start},
		{"restore", "begin", start},
		{"frobnicate", "begin", start},
		{"start", "end", start},
		{"stopped", "begin", start},
		{"started", "begin", []byte("not xml at all")},
	} {
		for _, cfg := range []string{defaultConfig, "bridges = [\"br0\"\n"} {
			name := tc.op + " " + tc.subop
			if cfg != defaultConfig {
				name += " with a broken config"
			}
			t.Run(name, func(t *testing.T) {
				before := l.snap()
				r := l.hook(t, call{Args: []string{"t2", tc.op, tc.subop, "-"}, Stdin: tc.stdin, Config: cfg})
				expectExit(t, r, 0)
				if r.Stdout != "" {
					t.Errorf("%s %s printed on stdout: %q", tc.op, tc.subop, r.Stdout)
				}
				l.expectUnchanged(t, name, before)
			})
		}
	}
}

// TestDryRun: FDBHOOK_DRY_RUN=1 and --dry-run print the whole plan on
// stderr — every port, flag change and entry, every skipped NIC with its
// reason — and change nothing.
func TestDryRun(t *testing.T) {
	t.Parallel()
	startXML := fixture(t, "qemu-t2-start-begin.xml")
	for _, tc := range []struct {
		name string
		c    call
	}{
		{"FDBHOOK_DRY_RUN=1", call{Args: []string{"t2", "start", "begin", "-"}, Env: []string{"FDBHOOK_DRY_RUN=1"}}},
		{"--dry-run", call{Args: []string{"--dry-run", "t2", "start", "begin", "-"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := t2Lab(t)
			before := l.snap()
			c := tc.c
			c.Stdin = startXML
			r := l.hook(t, c)
			expectExit(t, r, 0)
			expectStderr(t, r,
				"dry run (start): nothing is changed",
				"net0: fdb replace 52:54:00:aa:cc:01 dev guest-t2-a master br0 static",
				"net0: link set dev guest-t2-a learning off flood off (was learning on flood on)",
				"net2: fdb replace 52:54:00:aa:cc:03 dev vnet7 master br0 static",
				"net2: link set dev vnet7 learning off flood off (was learning on flood on)",
				"skip   net1 52:54:00:aa:cc:02: ", "virbr0 are not managed",
				"skip   net3 52:54:00:aa:cc:05: type 'user' is never managed",
				"skip   net4 52:54:00:aa:cc:06: type 'ethernet' is never managed")
			l.expectUnchanged(t, "dry run", before)

			// A real run then does exactly what the dry run listed.
			r = l.hook(t, call{Args: []string{"t2", "start", "begin", "-"}, Stdin: startXML})
			expectExit(t, r, 0)
			managed := before.managed("guest-t2-a", t2mac1).managed("vnet7", t2mac3)
			l.expect(t, "start after dry run", managed)

			// Stop, dry: the persistent taps' entries and flags are listed.
			c = tc.c
			c.Args = append(c.Args[:len(c.Args)-4:len(c.Args)-4], "t2", "stopped", "end", "-")
			c.Stdin = fixture(t, "qemu-t2-stopped-end.xml")
			c.Live = map[string]string{}
			r = l.hook(t, c)
			expectExit(t, r, 0)
			expectStderr(t, r, "dry run (stopped): nothing is changed",
				"fdb del 52:54:00:aa:cc:01 dev guest-t2-a static master br0",
				"link set dev guest-t2-a learning on flood on (was learning off flood off)")
			l.expectUnchanged(t, "dry run of stop", managed)
		})
	}
	t.Run("refusal", func(t *testing.T) {
		l := newStdLab(t)
		l.AddTap("guest-t2-a", "br0")
		before := l.snap()
		r := l.hook(t, call{Args: []string{"--dry-run", "t2", "start", "begin", "-"}, Stdin: startXML})
		expectStderr(t, r, "net0: fdb replace 52:54:00:aa:cc:01 dev guest-t2-a master br0 static",
			"refuse net2: 52:54:00:aa:cc:03 on br0: device vnet7 does not exist")
		l.expectUnchanged(t, "dry run with a refusal", before)
		t.Logf("dry run of a refused start: %s", r)
	})
}
