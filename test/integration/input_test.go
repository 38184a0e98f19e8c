package integration

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestBadInput runs the real binary on a table of broken, odd and hostile
// input. Every case states the exit code, a piece of stderr and the kernel
// state it must leave: unchanged, unless the case is one that succeeds.
func TestBadInput(t *testing.T) {
	t.Parallel()
	nic1 := nic{MAC: mac(7, 1), Bridge: "br0", Target: "tg1"}
	nic2 := nic{MAC: mac(7, 2), Bridge: "br0", Target: "tg2"}
	good := domain("fdbt-in", "", nic1)
	with := func(n nic) []byte { return domain("fdbt-in", "", n) }
	set := func(f func(*nic)) []byte { n := nic1; f(&n); return with(n) }
	meta := func(m string) []byte { return domain("fdbt-in", m, nic1, nic2) }
	managed1 := func(s snapshot) snapshot { return s.managed("tg1", mac(7, 1)) }
	start := []string{"fdbt-in", "start", "begin", "-"}
	deep := strings.Repeat("<a>", 10000) + strings.Repeat("</a>", 10000)
	huge := append(append([]byte("<domain><name>fdbt-in</name><!-- "), bytes.Repeat([]byte("x"), 17<<20)...), " --></domain>"...)
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	parent := func(l *lab) netlink.LinkAttrs { return netlink.LinkAttrs{Name: "up1.20", ParentIndex: l.Index("up1")} }

	cases := []struct {
		name   string
		args   []string // default start
		stdin  []byte
		config string // default defaultConfig
		cfgAt  func(dir string) string
		env    []string
		setup  func(t *testing.T, l *lab) // after tg1, tg2 exist on br0
		code   int
		stderr string
		want   func(snapshot) snapshot // nil: unchanged
	}{
		// Input that is not a domain at all.
		{name: "empty stdin", stdin: nil, code: 4, stderr: "standard input is empty"},
		{name: "only whitespace", stdin: []byte(" \n\t\n"), code: 4, stderr: "bad domain XML"},
		{name: "truncated XML", stdin: good[:len(good)/2], code: 4, stderr: "bad domain XML"},
		{name: "not XML", stdin: []byte("this is not XML\n"), code: 4, stderr: "bad domain XML"},
		{name: "binary garbage", stdin: binary, code: 4, stderr: "bad domain XML"},
		{name: "XML over 16 MiB", stdin: huge, code: 4, stderr: "larger than 16 MiB"},
		{name: "10000 nested elements", stdin: []byte(deep), code: 4, stderr: "nested deeper than"},
		{name: "undefined entity", stdin: []byte("<!DOCTYPE domain [<!ENTITY a \"aaaa\">]><domain><name>&a;&a;</name></domain>"),
			code: 4, stderr: "bad domain XML"},
		{name: "wrong root element", stdin: []byte("<network><name>fdbt-in</name></network>"), code: 4, stderr: "root element is <network>"},
		{name: "domstatus without domain", stdin: []byte("<domstatus state='running'><taint flag='x'/></domstatus>"),
			code: 4, stderr: "<domstatus> has no <domain>"},
		{name: "domain without name", stdin: bytes.Replace(good, []byte("<name>fdbt-in</name>"), nil, 1), code: 4, stderr: "no <name>"},
		// Odd but valid domains.
		{name: "domstatus around domain", stdin: []byte(domstatus(good)), want: managed1},
		{name: "unknown elements and attributes", stdin: bytes.Replace(set(func(n *nic) {
			n.Extra = "      <fdbtgadget colour='red'><part/></fdbtgadget>\n"
		}), []byte("<devices>"), []byte("<devices fdbtattr='1'>\n    <fdbtwidget/>"), 1), want: managed1},
		{name: "upper-case MAC", stdin: set(func(n *nic) { n.MAC = strings.ToUpper(n.MAC) }), want: managed1},
		{name: "name on the command line differs", args: []string{"fdbt-other", "start", "begin", "-"}, stdin: good,
			stderr: "fdbt-in", want: managed1},
		// NICs that cannot be managed.
		{name: "missing MAC", stdin: set(func(n *nic) { n.MAC = "" }), code: 1, stderr: "bad MAC address"},
		{name: "MAC too short", stdin: set(func(n *nic) { n.MAC = "52:54:00:fd:07" }), code: 1, stderr: "not a 48-bit MAC"},
		{name: "MAC too long (EUI-64)", stdin: set(func(n *nic) { n.MAC = "52:54:00:fd:07:01:02:03" }), code: 1, stderr: "not a 48-bit MAC"},
		{name: "multicast MAC", stdin: set(func(n *nic) { n.MAC = "53:54:00:fd:07:01" }), code: 1, stderr: "multicast"},
		{name: "broadcast MAC", stdin: set(func(n *nic) { n.MAC = "ff:ff:ff:ff:ff:ff" }), code: 1, stderr: "multicast"},
		{name: "all-zero MAC", stdin: set(func(n *nic) { n.MAC = "00:00:00:00:00:00" }), code: 1, stderr: "all-zero"},
		{name: "missing target dev", stdin: set(func(n *nic) { n.Target = "" }), code: 1, stderr: "no <target dev>"},
		{name: "target does not exist", stdin: set(func(n *nic) { n.Target = "fdbtnone" }), code: 1, stderr: "device fdbtnone does not exist"},
		{name: "target is the bridge", stdin: set(func(n *nic) { n.Target = "br0" }), code: 1, stderr: "br0 is a bridge"},
		{name: "target is the uplink", stdin: set(func(n *nic) { n.Target = "up0" }), code: 1, stderr: "up0 is a veth device"},
		{name: "target is a bond", stdin: set(func(n *nic) { n.Target = "fdbtbond1" }), code: 1, stderr: "fdbtbond1 is a bond device",
			setup: func(t *testing.T, l *lab) {
				addLink(t, l, netlink.NewLinkBond(netlink.LinkAttrs{Name: "fdbtbond1"}), "br0")
			}},
		{name: "target is a VLAN device", stdin: set(func(n *nic) { n.Target = "up1.20" }), code: 1, stderr: "up1.20 is a vlan device",
			setup: func(t *testing.T, l *lab) { addLink(t, l, &netlink.Vlan{LinkAttrs: parent(l), VlanId: 20}, "br0") }},
		{name: "openvswitch virtualport", stdin: set(func(n *nic) { n.VirtualPort = "openvswitch" }), env: []string{"FDBHOOK_LOG_LEVEL=debug"},
			stderr: "Open vSwitch port"},
		{name: "802.1Qbh virtualport", stdin: set(func(n *nic) { n.VirtualPort = "802.1Qbh" })},
		{name: "type direct", stdin: set(func(n *nic) { n.Type = "direct" })},
		{name: "type network, network not managed", stdin: set(func(n *nic) { n.Type, n.Network = "network", "fdbtnet" }),
			config: "bridges = [\"virbr0\"]\n"},
		{name: "duplicate MAC within the guest", stdin: domain("fdbt-in", "", nic1, nic{MAC: nic1.MAC, Bridge: "br0", Target: "tg2"}),
			code: 1, stderr: "duplicate MAC"},
		{name: "duplicate MAC across guests", stdin: good, code: 1, stderr: "duplicate MAC",
			setup: func(t *testing.T, l *lab) {
				l.start(t, "fdbt-other", domain("fdbt-other", "", nic{MAC: mac(7, 1), Bridge: "br0", Target: "tg2"}))
			}},
		// Operations and arguments.
		{name: "unknown operation", args: []string{"fdbt-in", "frobnicate", "begin", "-"}, stdin: good},
		{name: "unknown sub-operation", args: []string{"fdbt-in", "start", "middle", "-"}, stdin: good},
		{name: "no arguments", args: []string{}, stdin: good, code: 2, stderr: "not a hook call: expected DOMAIN OPERATION SUB-OPERATION EXTRA, got 0 arguments"},
		{name: "three arguments", args: []string{"fdbt-in", "start", "begin"}, stdin: good, code: 2, stderr: "got 3 arguments"},
		{name: "five arguments", args: []string{"fdbt-in", "start", "begin", "-", "extra"}, stdin: good, code: 2, stderr: "got 5 arguments"},
		{name: "--dry-run with too few", args: []string{"--dry-run", "fdbt-in", "start"}, stdin: good, code: 2, stderr: "got 3 arguments"},
		{name: "an admin command", args: []string{"status"}, stdin: good, code: 2, stderr: "see 'fdbhook --help'"},
		// Configuration.
		{name: "config missing: manage nothing", stdin: good, cfgAt: func(dir string) string { return filepath.Join(dir, "absent.toml") }},
		{name: "config is a directory", stdin: good, cfgAt: func(dir string) string { return dir }, code: 3, stderr: "is a directory"},
		{name: "config below a regular file", stdin: good, code: 3, stderr: "not a directory",
			cfgAt: func(dir string) string {
				f := filepath.Join(dir, "file")
				if err := os.WriteFile(f, nil, 0o644); err != nil {
					panic(err)
				}
				return filepath.Join(f, "fdbhook.toml")
			}},
		{name: "invalid TOML", stdin: good, config: "bridges = [\"br0\"\n", code: 3, stderr: "line"},
		{name: "unknown config key", stdin: good, config: defaultConfig + "bridge_list = [\"br1\"]\n", code: 3, stderr: "unknown key bridge_list"},
		{name: "misspelt bridge policy key", stdin: good, config: defaultConfig + "[bridge.br0]\nvlan_filter = \"enable\"\n", code: 3, stderr: "unknown key"},
		{name: "bad on_error", stdin: good, config: defaultConfig + "on_error = \"ignore\"\n", code: 3, stderr: "on_error"},
		{name: "bad log_level", stdin: good, config: defaultConfig + "log_level = \"loud\"\n", code: 3, stderr: "log_level"},
		{name: "bad FDBHOOK_LOG_LEVEL", stdin: good, env: []string{"FDBHOOK_LOG_LEVEL=loud"}, code: 3, stderr: "FDBHOOK_LOG_LEVEL"},
		{name: "bridges is not a list", stdin: good, config: "bridges = \"br0\"\n", code: 3, stderr: "bridges"},
		{name: "config names a bridge that does not exist", stdin: good, config: "bridges = [\"fdbtnobr\"]\n"},
		// Metadata.
		{name: "guest opted out", stdin: meta(`<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1" manage="no"/>`)},
		{name: "one NIC opted out", stdin: meta(`<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1"><fdbhook:interface mac="` +
			strings.ToUpper(mac(7, 2)) + `" manage="no"/></fdbhook:fdb>`), want: managed1},
		{name: "metadata manage=maybe", stdin: meta(`<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1" manage="maybe"/>`),
			code: 4, stderr: "manage=\"maybe\""},
		{name: "metadata with a bad MAC", stdin: meta(`<fdbhook:fdb xmlns:fdbhook="urn:fdbhook:1"><fdbhook:interface mac="nope" manage="no"/></fdbhook:fdb>`),
			code: 4, stderr: "nope"},
		{name: "other tools' metadata", stdin: domain("fdbt-in", `<fdb:config xmlns:fdb="urn:example:fdb"><fdb:skip mac="`+mac(7, 1)+`"/></fdb:config>`, nic1),
			want: managed1},
	}

	var passed, failed, skipped atomic.Int32
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				defer func() {
					switch {
					case t.Skipped():
						skipped.Add(1)
					case t.Failed():
						failed.Add(1)
					default:
						passed.Add(1)
					}
				}()
				l := newStdLab(t)
				l.AddTap("tg1", "br0")
				l.AddTap("tg2", "br0")
				if tc.setup != nil {
					tc.setup(t, l)
				}
				c := call{Args: tc.args, Stdin: tc.stdin, Config: tc.config, Env: tc.env}
				if c.Args == nil {
					c.Args = start
				}
				if tc.cfgAt != nil {
					c.ConfigPath = tc.cfgAt(t.TempDir())
				}
				before := l.snap()
				r := l.hook(t, c)
				expectExit(t, r, tc.code)
				if tc.stderr != "" {
					expectStderr(t, r, tc.stderr)
				}
				if tc.code == 0 && tc.stderr == "" && tc.env == nil && r.Stderr != "" {
					t.Errorf("a clean run wrote to stderr: %q", r.Stderr)
				}
				want := before
				if tc.want != nil {
					want = tc.want(before)
				}
				l.expect(t, tc.name, want)
			})
		}
	})
	t.Logf("bad-input table: %d cases, %d passed, %d failed, %d skipped", len(cases), passed.Load(), failed.Load(), skipped.Load())
}
