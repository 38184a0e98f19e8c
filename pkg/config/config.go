package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// maxSize bounds the configuration file; a real one is a few hundred bytes.
const maxSize = 1 << 20

// OnError says what a failed apply at guest start does.
type OnError string

const (
	// Fail undoes what the run applied and makes the guest start fail.
	Fail OnError = "fail"
	// Warn undoes what the run applied, logs, and lets the guest start
	// unmanaged.
	Warn OnError = "warn"
)

// VlanFiltering is the bridge-level VLAN filtering policy.
type VlanFiltering string

const (
	// Leave does not touch the bridge's vlan_filtering setting.
	Leave VlanFiltering = "leave"
	// Enable turns vlan_filtering on, which lets the kernel drop the uplink
	// out of promiscuous mode once every guest port is managed.
	Enable VlanFiltering = "enable"
)

// UndeclaredMACs says what fdbhook does about the source MACs a guest
// sends from that it did not declare (nested guests, macvlan, VRRP): with
// learning and unicast flooding off their inbound frames are not delivered.
type UndeclaredMACs string

const (
	// Ignore manages the port as always (learning off, flood off): frames
	// to an undeclared MAC are silently lost.
	Ignore UndeclaredMACs = "ignore"
	// Report locks the port with MAC Authentication Bypass (learning on,
	// flood off, locked on, mab on, Linux 6.2+): the kernel drops frames
	// from an undeclared MAC and shows the MAC as a locked entry, which
	// fdbhook reports.
	Report UndeclaredMACs = "report"
	// Follow locks the port with MAB as Report does, and the watcher
	// authorises each MAC the guest sends from (a static entry on its
	// port), up to the bridge's follow_max per NIC, unless another guest
	// or port claims it.
	Follow UndeclaredMACs = "follow"
)

// DefaultFollowMax is how many MACs one NIC may have followed when the
// bridge does not set follow_max.
const DefaultFollowMax = 8

// MaxFollowMax bounds follow_max: the bound on a NIC's extra MACs
// (guest.MaxExtraMACs, which this package does not import).
const MaxFollowMax = 64

// Detects reports whether the mode locks the port with MAB, so that the
// kernel shows undeclared MACs as locked entries (Report and Follow).
func (u UndeclaredMACs) Detects() bool { return u == Report || u == Follow }

// ParseUndeclaredMACs is the one place that knows the values of
// undeclared_macs and of the metadata's undeclared-macs attribute; "" is
// Ignore.
func ParseUndeclaredMACs(s string) (UndeclaredMACs, error) {
	switch u := UndeclaredMACs(s); u {
	case "":
		return Ignore, nil
	case Ignore, Report, Follow:
		return u, nil
	}
	return "", fmt.Errorf("%q: want \"ignore\", \"report\" or \"follow\"", s)
}

// Bridge is the policy of one managed bridge.
type Bridge struct {
	VlanFiltering VlanFiltering `toml:"vlan_filtering"`
	// LockPorts locks managed guest ports (IFLA_BRPORT_LOCKED): the bridge
	// then drops frames whose source MAC has no entry on the port. A guest's
	// or NIC's metadata overrides it.
	LockPorts bool `toml:"lock_ports"`
	// Sticky writes the guests' entries with NTF_STICKY, so that frames on
	// other ports cannot move them. A guest's or NIC's metadata overrides it.
	Sticky bool `toml:"sticky"`
	// UndeclaredMACs is what is done about source MACs the bridge's guests
	// did not declare ("ignore", the default, "report" or "follow"). A
	// guest's or NIC's metadata overrides it.
	UndeclaredMACs UndeclaredMACs `toml:"undeclared_macs"`
	// FollowMax is how many MACs one guest NIC on the bridge may have
	// followed (undeclared_macs = "follow"), 1 to MaxFollowMax; 0 in the
	// file means DefaultFollowMax.
	FollowMax int `toml:"follow_max"`
	// followMaxSet: the file sets follow_max (so 0 is refused, not the
	// default).
	followMaxSet bool
}

// Config is a validated configuration.
type Config struct {
	// Path is the file this configuration was read from.
	Path string `toml:"-"`
	// Present is false when the file does not exist: fdbhook then manages
	// nothing.
	Present bool `toml:"-"`

	Bridges  []string          `toml:"bridges"`
	Networks []string          `toml:"networks"`
	OnError  OnError           `toml:"on_error"`
	LogLevel string            `toml:"log_level"`
	Bridge   map[string]Bridge `toml:"bridge"`
	Watch    Watch             `toml:"watch"`
}

// Watch configures "fdbhook watch", the companion process that keeps
// running guests' ports managed between their start and stop.
type Watch struct {
	// Resync is how often the watcher re-checks every running guest, to
	// heal what an event missed ("60s", "5m"; 5s to 24h).
	Resync string `toml:"resync"`
	// ResyncInterval is Resync parsed.
	ResyncInterval time.Duration `toml:"-"`
	// Metrics is where the watcher serves Prometheus metrics on /metrics:
	// "host:port" or "unix:/absolute/path"; "" (the default) serves none.
	// Read at start.
	Metrics string `toml:"metrics"`
}

// DefaultResync is the watcher's safety resync interval.
const DefaultResync = 60 * time.Second

// Bounds of [watch] resync: more often would cost CPU for nothing (events
// do the work), less often leaves a missed event unhealed for too long.
const (
	MinResync = 5 * time.Second
	MaxResync = 24 * time.Hour
)

// checkMetricsAddr accepts "", "host:port" and "unix:/absolute/path".
func checkMetricsAddr(a string) error {
	if a == "" {
		return nil
	}
	if path, ok := strings.CutPrefix(a, "unix:"); ok {
		if !filepath.IsAbs(path) {
			return errors.New("want unix: and an absolute socket path")
		}
		return nil
	}
	// An empty host listens on every address: allowed; the docs advise
	// localhost or a unix socket. (Not net.SplitHostPort: the hooks read
	// this file too, and must not link package net for it.)
	i := strings.LastIndexByte(a, ':')
	host, port := "", ""
	if i >= 0 {
		host, port = a[:i], a[i+1:]
	}
	bracketed := strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]")
	if i < 0 || port == "" || strings.ContainsAny(host, "[]") && !bracketed || !bracketed && strings.Contains(host, ":") {
		return errors.New("want host:port (such as \"127.0.0.1:9568\") or unix:/path")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q: want 1 to 65535", port)
	}
	return nil
}

// Error is a configuration problem, with the file it was found in.
type Error struct {
	Path string
	Err  error
}

func (e *Error) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Default returns the configuration used when no file exists: nothing is
// managed.
func Default(path string) *Config {
	return &Config{Path: path, OnError: Fail, LogLevel: "info", Bridge: map[string]Bridge{},
		Watch: Watch{Resync: DefaultResync.String(), ResyncInterval: DefaultResync}}
}

// Load reads and validates the file at path. A missing file is not an error:
// the result manages nothing and has Present false.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(path), nil
	}
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	if len(data) > maxSize {
		return nil, &Error{Path: path, Err: fmt.Errorf("larger than %d bytes", maxSize)}
	}
	c, err := Parse(data)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	c.Path = path
	return c, nil
}

// Parse decodes and validates a configuration. Unknown keys are errors: a
// misspelt key must not silently leave a bridge unmanaged. Errors are one
// line: the decoder quotes raw input, which may hold newlines.
func Parse(data []byte) (*Config, error) {
	c, err := parse(data)
	if err != nil {
		return nil, errors.New(OneLine(err.Error()))
	}
	return c, nil
}

// OneLine escapes control characters so a message stays on one line: the
// configuration's errors, and the hook's failure line libvirt shows.
func OneLine(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func parse(data []byte) (*Config, error) {
	return decode(withoutCommentLines(data))
}

func decode(text string) (*Config, error) {
	c := Default("")
	md, err := toml.Decode(text, c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("line %d: %s", perr.Position.Line, perr.Message)
		}
		if hint := typeHint(text); hint != nil {
			return nil, hint
		}
		return nil, err
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("unknown key %s", strings.Join(keys, ", "))
	}
	// The decoder accepts an array where a table is expected and drops it;
	// refuse that rather than silently apply no policy.
	for _, k := range md.Keys() {
		if (k[0] == "watch" && len(k) == 1 || k[0] == "bridge" && len(k) <= 2) && md.Type(k...) != "Hash" {
			if hint := typeHint(text); hint != nil {
				return nil, hint
			}
			return nil, fmt.Errorf("%s must be a table ([%s])", k, k)
		}
	}
	c.Present = true
	if c.Bridge == nil {
		c.Bridge = map[string]Bridge{}
	}
	for name, b := range c.Bridge {
		b.followMaxSet = md.IsDefined("bridge", name, "follow_max")
		c.Bridge[name] = b
	}
	return c, c.validate()
}

// Level is a log level, most severe first: the values of log_level and of
// FDBHOOK_LOG_LEVEL.
type Level int

const (
	LevelError Level = iota
	LevelWarning
	LevelInfo
	LevelDebug
)

// ParseLevel is the one place that knows the level names.
func ParseLevel(s string) (Level, error) {
	switch s {
	case "debug":
		return LevelDebug, nil
	case "info":
		return LevelInfo, nil
	case "warning", "warn":
		return LevelWarning, nil
	case "error":
		return LevelError, nil
	}
	return 0, fmt.Errorf("%q: want debug, info, warning or error", s)
}

func (c *Config) validate() error {
	switch c.OnError {
	case Fail, Warn:
	default:
		return fmt.Errorf("on_error = %q: want \"fail\" or \"warn\"", c.OnError)
	}
	if _, err := ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("log_level = %w", err)
	}
	d, err := time.ParseDuration(c.Watch.Resync)
	switch {
	case err != nil:
		return fmt.Errorf("[watch] resync = %q: want a duration such as \"60s\" or \"5m\"", c.Watch.Resync)
	case d < MinResync || d > MaxResync:
		return fmt.Errorf("[watch] resync = %q: want %s to %s", c.Watch.Resync, MinResync, MaxResync)
	}
	c.Watch.ResyncInterval = d
	if err := checkMetricsAddr(c.Watch.Metrics); err != nil {
		return fmt.Errorf("[watch] metrics = %q: %w", c.Watch.Metrics, err)
	}
	if err := checkNames("bridges", c.Bridges, ValidIfName); err != nil {
		return err
	}
	if err := checkNames("networks", c.Networks, validNetworkName); err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(c.Bridge)) {
		if err := ValidIfName(name); err != nil {
			return fmt.Errorf("[bridge.%s]: %w", name, err)
		}
		b := c.Bridge[name]
		switch b.VlanFiltering {
		case "":
			b.VlanFiltering = Leave
		case Leave, Enable:
		default:
			return fmt.Errorf("[bridge.%s] vlan_filtering = %q: want \"enable\" or \"leave\"", name, b.VlanFiltering)
		}
		u, err := ParseUndeclaredMACs(string(b.UndeclaredMACs))
		if err != nil {
			return fmt.Errorf("[bridge.%s] undeclared_macs = %w", name, err)
		}
		b.UndeclaredMACs = u
		switch {
		case b.FollowMax == 0 && !b.followMaxSet:
			b.FollowMax = DefaultFollowMax
		case b.FollowMax < 1 || b.FollowMax > MaxFollowMax:
			return fmt.Errorf("[bridge.%s] follow_max = %d: want 1 to %d", name, b.FollowMax, MaxFollowMax)
		}
		b.followMaxSet = false
		c.Bridge[name] = b
	}
	return nil
}

func checkNames(key string, names []string, valid func(string) error) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := valid(n); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if seen[n] {
			return fmt.Errorf("%s: %q listed twice", key, n)
		}
		seen[n] = true
	}
	return nil
}

// ValidIfName reports whether name can be a Linux network interface name.
func ValidIfName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." ||
		strings.ContainsAny(name, "/: \t\n") {
		return fmt.Errorf("%q is not a valid interface name", name)
	}
	return nil
}

func validNetworkName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\n") {
		return fmt.Errorf("%q is not a valid network name", name)
	}
	return nil
}

// ManagesBridge reports whether bridges lists name.
func (c *Config) ManagesBridge(name string) bool { return slices.Contains(c.Bridges, name) }

// ManagesNetwork reports whether networks lists name.
func (c *Config) ManagesNetwork(name string) bool { return slices.Contains(c.Networks, name) }

// Empty reports whether the configuration manages nothing.
func (c *Config) Empty() bool { return len(c.Bridges) == 0 && len(c.Networks) == 0 }

// Policy returns the policy for bridge name (defaults when not configured).
func (c *Config) Policy(name string) Bridge {
	b, ok := c.Bridge[name]
	if !ok || b.VlanFiltering == "" {
		b.VlanFiltering = Leave
	}
	if b.UndeclaredMACs == "" {
		b.UndeclaredMACs = Ignore
	}
	if b.FollowMax == 0 {
		b.FollowMax = DefaultFollowMax
	}
	return b
}

// withoutCommentLines blanks the lines that are only a comment, keeping
// the line count (the decoder's errors name lines). The decoder hands each
// comment through its lexer's channel: the 3.8 KB of comments of the
// packaged file took 6 times as long to decode as the rest of it (in
// process; 0.1 to 0.2 ms of every hook run in a fresh one). A text with a
// multi-line string is passed as it is, since a line starting with # may
// be inside one, and so is a comment the decoder would refuse (a control
// character, invalid UTF-8), so that it still does.
func withoutCommentLines(data []byte) string {
	if bytes.Contains(data, []byte(`"""`)) || bytes.Contains(data, []byte("'''")) {
		return string(data)
	}
	out := make([]byte, 0, len(data))
	for len(data) > 0 {
		line, rest, found := bytes.Cut(data, []byte("\n"))
		text := line
		if found {
			// CRLF: the CR ends the line (a lone CR is refused).
			text = bytes.TrimSuffix(line, []byte("\r"))
		}
		if !plainComment(text) {
			out = append(out, line...)
		}
		if found {
			out = append(out, '\n')
		}
		data = rest
	}
	return string(out)
}

// plainComment reports whether line is blanks and a comment of printable
// UTF-8.
func plainComment(line []byte) bool {
	t := bytes.TrimLeft(line, " \t")
	if len(t) == 0 || t[0] != '#' || !utf8.Valid(t) {
		return false
	}
	for _, b := range t {
		if (b < 0x20 && b != '\t') || b == 0x7f {
			return false
		}
	}
	return true
}
