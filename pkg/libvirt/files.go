package libvirt

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/antchfx/xmlquery"

	"github.com/fdbhook/fdbhook/pkg/model"
)

// Paths are where libvirt keeps its state; tests point them elsewhere.
type Paths struct {
	// NetworkDirs are searched in order for NAME.xml: the running
	// networks' status first, then the persistent definitions.
	NetworkDirs []string
	// QemuRunDir holds the live XML of running guests (NAME.xml, a
	// <domstatus> around the <domain>).
	QemuRunDir string
	// LxcRunDir holds the live XML of running containers (NAME.xml, a
	// <domstatus pid=CONTROLLER> with <init pid=…/> around the <domain>).
	LxcRunDir string
	// ProcDir is where processes are (/proc).
	ProcDir string
}

// Files reads libvirt's state files, caching what it read for one run.
type Files struct {
	paths  Paths
	owners map[string]string
	nets   map[string]*model.Network
}

// New returns a reader of the files under p.
func New(p Paths) *Files { return &Files{paths: p, nets: map[string]*model.Network{}} }

// Network reads network name's bridge and MAC table manager; nil when
// libvirt has no file for it.
func (f *Files) Network(name string) (*model.Network, error) {
	if n, ok := f.nets[name]; ok {
		return n, nil
	}
	if strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("invalid network name %q", name)
	}
	var n *model.Network
	for _, dir := range f.paths.NetworkDirs {
		data, err := os.ReadFile(filepath.Join(dir, name+".xml"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n, err = parseNetwork(data); err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name+".xml"), err)
		}
		break
	}
	f.nets[name] = n
	return n, nil
}

// ParseNetwork reads a <network>, or a <networkstatus> or <hookData> around one.
func parseNetwork(data []byte) (*model.Network, error) {
	doc, err := xmlquery.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	net := xmlquery.FindOne(doc, "//network")
	if net == nil {
		return nil, errors.New("no <network> element")
	}
	n := &model.Network{}
	if e := xmlquery.FindOne(net, "name"); e != nil {
		n.Name = strings.TrimSpace(e.InnerText())
	}
	if e := xmlquery.FindOne(net, "bridge"); e != nil {
		n.Bridge = e.SelectAttr("name")
		n.MacTableLibvirt = e.SelectAttr("macTableManager") == "libvirt"
	}
	return n, nil
}

// ParseNetwork is parseNetwork for the network hook's standard input.
func ParseNetwork(data []byte) (*model.Network, error) { return parseNetwork(data) }

// PortOwner returns the running guest whose live XML names port as a target
// device, or "". The directory is read once per run, and only when asked:
// only clean-up of a port that outlived its guest needs it.
func (f *Files) PortOwner(port string) (string, error) {
	if f.owners == nil {
		owners, err := readOwners(f.paths.QemuRunDir)
		if err != nil {
			return "", err
		}
		if f.paths.LxcRunDir != "" {
			containers, err := readOwners(f.paths.LxcRunDir)
			if err != nil {
				return "", err
			}
			maps.Copy(owners, containers)
		}
		f.owners = owners
	}
	return f.owners[port], nil
}

// readOwners maps the ports of the running guests whose live XML is in dir.
// A file that cannot be parsed owns nothing (it is not ours to judge); one
// that cannot be read fails the lookup, since its guest may own the port.
func readOwners(dir string) (map[string]string, error) {
	guests, skipped, err := ReadGuests(dir)
	if err != nil {
		return nil, err
	}
	for _, err := range skipped {
		if pe, unread := errors.AsType[*fs.PathError](err); unread {
			return nil, pe
		}
	}
	return PortOwners(guests), nil
}
