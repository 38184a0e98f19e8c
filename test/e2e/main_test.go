//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	testlab "github.com/fdbhook/fdbhook/test/lab"
)

// Names of everything the suite creates. run.sh writes the test
// configuration, which manages bridge0, brNet and natNet and nothing else.
const (
	bridge0 = "fdbtbr0"   // managed bridge (listed in bridges)
	bridge1 = "fdbtbr1"   // bridge the configuration does not list
	uplink  = "fdbtup0"   // uplink port of bridge0, veth to the outside host
	outNS   = "fdbt-out"  // network namespace of the "outside host"
	outIf   = "fdbtout0"  // the outside host's end of the uplink
	brNet   = "fdbtbrnet" // <forward mode='bridge'/> network over bridge0
	natNet  = "fdbtnat"   // NAT network; libvirt names its bridge

	configPath = "/etc/fdbhook/fdbhook.toml"
)

// The shared guest: one of each kind of NIC the scenarios look at.
const (
	g1      = "fdbtg1"
	g1Tap   = "fdbtg1a"           // custom <target dev> of g1BrA
	g1BrA   = "52:54:00:fd:01:01" // bridge fdbtbr0, custom tap; written upper case
	g1BrB   = "52:54:00:fd:01:02" // bridge fdbtbr0, tap named by libvirt
	g1BrNet = "52:54:00:fd:01:03" // network fdbtbrnet
	g1Nat   = "52:54:00:fd:01:04" // network fdbtnat
	g1Br1   = "52:54:00:fd:01:05" // bridge fdbtbr1, not managed
	g1User  = "52:54:00:fd:01:06" // type='user'
	g1Eth   = "52:54:00:fd:01:07" // type='ethernet'
	g1EthT  = "fdbtg1e"           // its tap
	g1Opt   = "52:54:00:fd:01:08" // bridge fdbtbr0, opted out in metadata
)

// g1Managed lists g1's NICs the hook must manage.
var g1Managed = []string{g1BrA, g1BrB, g1BrNet, g1Nat}

// g1MACs lists every MAC of g1.
var g1MACs = []string{g1BrA, g1BrB, g1BrNet, g1Nat, g1Br1, g1User, g1Eth, g1Opt}

// suite is the state shared by the scenarios.
var suite struct {
	k         *kernel
	natBridge string // bridge libvirt created for natNet
}

func TestMain(m *testing.M) {
	if os.Getenv("FDBHOOK_E2E") != "1" {
		os.Exit(testlab.Unavailable("e2e", "it needs root, a running libvirtd with the fdbhook hooks installed "+
			"and the test configuration; run it through test/e2e/run.sh (make e2e)"))
	}
	closeInheritedOnExec()
	os.Exit(runSuite(m))
}

// closeInheritedOnExec marks every descriptor this process inherited beyond
// 0-2 close-on-exec. A caller's lock descriptor (flock(1) passes its own down
// to its command) would otherwise live on in the libvirtd that scenario 4
// starts, and hold the host's test lock forever.
func closeInheritedOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// runSuite builds the shared topology, runs the scenarios and always tears
// the topology down again.
func runSuite(m *testing.M) (code int) {
	start := time.Now()
	h, err := netlink.NewHandle()
	if err != nil {
		fmt.Fprintln(os.Stderr, "netlink:", err)
		return 1
	}
	defer h.Close()
	suite.k = &kernel{h: h}
	defer func() {
		if err := teardown(h); err != nil {
			fmt.Fprintln(os.Stderr, "teardown:", err)
			code = 1
		}
		fmt.Printf("e2e: suite finished in %s\n", time.Since(start).Round(time.Millisecond))
	}()
	if err := checkConfig(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := setup(h); err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	fmt.Printf("e2e: topology ready in %s (NAT bridge %s)\n", time.Since(start).Round(time.Millisecond), suite.natBridge)
	return m.Run()
}

// checkConfig makes sure the installed configuration is the suite's.
func checkConfig() error {
	b, err := os.ReadFile(configPath)
	if err != nil {
		return fmt.Errorf("test configuration: %w (run.sh writes it)", err)
	}
	for _, name := range []string{bridge0, brNet, natNet} {
		if !strings.Contains(string(b), `"`+name+`"`) {
			return fmt.Errorf("%s does not list %q: not the e2e configuration", configPath, name)
		}
	}
	return nil
}

// setup creates the outside host, the bridges and the libvirt networks.
func setup(h *netlink.Handle) error {
	if err := teardown(h); err != nil { // leftovers of an interrupted run
		return err
	}
	if out, err := exec.Command("ip", "netns", "add", outNS).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", outNS, err, out)
	}
	for _, br := range []string{bridge0, bridge1} {
		// STP off (the kernel default): ports forward as soon as they are up.
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br}}); err != nil {
			return fmt.Errorf("add bridge %s: %w", br, err)
		}
	}
	ns, err := netns.GetFromName(outNS)
	if err != nil {
		return fmt.Errorf("netns %s: %w", outNS, err)
	}
	defer ns.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: uplink}, PeerName: outIf, PeerNamespace: netlink.NsFd(int(ns))}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s: %w", uplink, err)
	}
	// No IPv6 on the suite's own links: the only frames on bridge0 are the
	// suite's, which keeps the traffic scenario's counters exact.
	for _, l := range []string{bridge0, bridge1, uplink} {
		if err := disableIPv6(l); err != nil {
			return fmt.Errorf("disable IPv6 on %s: %w", l, err)
		}
	}
	if out, err := exec.Command("ip", "netns", "exec", outNS, "sh", "-c",
		"echo 1 > /proc/sys/net/ipv6/conf/"+outIf+"/disable_ipv6 && ip link set "+outIf+" up").CombinedOutput(); err != nil {
		return fmt.Errorf("outside host: %v: %s", err, out)
	}
	br0, err := h.LinkByName(bridge0)
	if err != nil {
		return err
	}
	up, err := h.LinkByName(uplink)
	if err != nil {
		return err
	}
	if err := h.LinkSetMaster(up, br0); err != nil {
		return fmt.Errorf("enslave %s: %w", uplink, err)
	}
	for _, l := range []string{uplink, bridge0, bridge1} {
		link, err := h.LinkByName(l)
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", l, err)
		}
	}
	dir, err := os.MkdirTemp("", "fdbt-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nets := map[string]string{
		brNet: "<network><name>" + brNet + "</name><forward mode='bridge'/><bridge name='" + bridge0 + "'/></network>",
		// No <bridge> element: libvirt picks the name (virbrN), and the
		// scenarios must find it through net-dumpxml as the hook would not.
		natNet: "<network><name>" + natNet + "</name><forward mode='nat'/>" +
			"<ip address='10.252.17.1' netmask='255.255.255.0'/></network>",
	}
	for _, name := range []string{brNet, natNet} {
		f := filepath.Join(dir, name+".xml")
		if err := os.WriteFile(f, []byte(nets[name]), 0o644); err != nil {
			return err
		}
		// Transient: nothing of it survives the suite, even a killed one.
		if _, stderr, err := virsh("net-create", f); err != nil {
			return fmt.Errorf("net-create %s: %v: %s", name, err, stderr)
		}
	}
	out, stderr, err := virsh("net-dumpxml", natNet)
	if err != nil {
		return fmt.Errorf("net-dumpxml %s: %v: %s", natNet, err, stderr)
	}
	if i := strings.Index(out, "<bridge name='"); i >= 0 {
		rest := out[i+len("<bridge name='"):]
		suite.natBridge = rest[:strings.Index(rest, "'")]
	}
	if suite.natBridge == "" {
		return fmt.Errorf("net-dumpxml %s: no bridge name in %s", natNet, out)
	}
	return nil
}

// teardown removes everything named fdbt*: guests, networks, links and the
// namespace. It works from any state, so it also clears an interrupted run.
func teardown(h *netlink.Handle) error {
	var errs []error
	out, stderr, err := virsh("list", "--all", "--name")
	if err != nil {
		errs = append(errs, fmt.Errorf("virsh list: %w: %s; %s", err, strings.TrimSpace(stderr), libvirtdState()))
	}
	for _, g := range strings.Fields(out) {
		if strings.HasPrefix(g, "fdbt") {
			removeGuest(g)
		}
	}
	out, _, err = virsh("net-list", "--all", "--name")
	if err != nil {
		errs = append(errs, fmt.Errorf("virsh net-list: %w", err))
	}
	for _, n := range strings.Fields(out) {
		if strings.HasPrefix(n, "fdbt") {
			virsh("net-destroy", n)
			virsh("net-undefine", n)
		}
	}
	links, err := h.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		errs = append(errs, fmt.Errorf("link list: %w", err))
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "fdbt") {
			if err := h.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("delete %s: %w", l.Attrs().Name, err))
			}
		}
	}
	if _, err := os.Stat("/run/netns/" + outNS); err == nil {
		if out, err := exec.Command("ip", "netns", "del", outNS).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", outNS, err, out))
		}
	}
	return errors.Join(errs...)
}

// startG1 defines and starts the shared guest unless it already runs
// managed, so that any scenario can run alone (go test -run).
func startG1(t *testing.T) {
	t.Helper()
	if domState(g1) == "running" {
		return
	}
	removeGuest(g1)
	start := time.Now()
	defineGuest(t, g1, []nic{
		{typ: "bridge", mac: strings.ToUpper(g1BrA), source: bridge0, target: g1Tap},
		{typ: "bridge", mac: g1BrB, source: bridge0},
		{typ: "network", mac: g1BrNet, source: brNet},
		{typ: "network", mac: g1Nat, source: natNet},
		{typ: "bridge", mac: g1Br1, source: bridge1},
		{typ: "user", mac: g1User},
		{typ: "ethernet", mac: g1Eth, target: g1EthT},
		{typ: "bridge", mac: g1Opt, source: bridge0},
	})
	setMetadata(t, g1, `<fdb><interface mac="`+g1Opt+`" manage="no"/></fdb>`)
	virshOK(t, "start", g1)
	t.Logf("%s defined and started in %s", g1, time.Since(start).Round(time.Millisecond))
}

// assertG1Managed checks every NIC of g1 the hook must manage.
func assertG1Managed(t *testing.T) {
	t.Helper()
	k := suite.k
	nics := liveNICs(t, g1)
	for _, mac := range g1Managed {
		n := nicByMAC(t, nics, mac)
		br := n.Source.Bridge
		if mac == g1Nat {
			br = suite.natBridge
		}
		k.assertManaged(t, n.Target.Dev, br, mac)
	}
}

// timed logs how long a scenario took.
func timed(t *testing.T) {
	start := time.Now()
	t.Cleanup(func() { t.Logf("scenario %s took %s", t.Name(), time.Since(start).Round(time.Millisecond)) })
}

// libvirtdState says, for a failure that may be libvirtd's absence, which
// libvirtd processes run (pid, start time, mount namespace) and what the
// pid file names: a teardown that cannot reach libvirtd must say whether it
// was gone, replaced, or running elsewhere.
func libvirtdState() string {
	pidFile, err := os.ReadFile(libvirtdPIDFile)
	state := "pid file " + libvirtdPIDFile + ": "
	if err != nil {
		state += err.Error()
	} else {
		state += strings.TrimSpace(string(pidFile))
	}
	ents, _ := os.ReadDir("/proc")
	var procs []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "libvirtd" {
			continue
		}
		mnt, _ := os.Readlink("/proc/" + e.Name() + "/ns/mnt")
		var st syscall.Stat_t
		started := "?"
		if syscall.Stat("/proc/"+e.Name(), &st) == nil {
			started = time.Unix(st.Ctim.Sec, 0).Format("15:04:05")
		}
		procs = append(procs, fmt.Sprintf("%s (since %s, %s)", e.Name(), started, mnt))
	}
	if len(procs) == 0 {
		return state + "; no libvirtd process"
	}
	return state + "; libvirtd processes: " + strings.Join(procs, ", ")
}
