package manage

import (
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fdbhook/fdbhook/pkg/guest"
	"github.com/fdbhook/fdbhook/pkg/libvirt"
)

// Live is the running guests of both of libvirt's drivers as their live
// XML says (/run/libvirt/qemu/NAME.xml, /run/libvirt/lxc/NAME.xml): what
// every program reads of them. A guest of the LXC driver's directory is a
// container (Type lxc) whatever its XML says. Refresh stats every file
// and parses again only those that changed, so a watcher's resync of
// hundreds of guests does not parse hundreds of documents.
type Live struct {
	dirs  []string
	lxc   string
	files map[string]*liveFile // by path
	// Complete is false when a file could not be read or parsed: a port
	// may then belong to a guest no one knows of.
	Complete bool
	// Notes say which files were skipped, and why.
	Notes []string
	// owners maps the guests' ports to them (libvirt.PortOwners), as of
	// the last refresh.
	owners map[string]string
}

type liveFile struct {
	mod  time.Time
	size int64
	ino  uint64
	g    *guest.Guest
	err  error
}

// NewLive reads the live XML of p's run directories, at each Refresh.
func NewLive(p libvirt.Paths) *Live {
	dirs := slices.DeleteFunc([]string{p.QemuRunDir, p.LxcRunDir}, func(d string) bool { return d == "" })
	return &Live{dirs: dirs, lxc: p.LxcRunDir, files: map[string]*liveFile{}}
}

// ReadLive reads the running guests of p's run directories once.
func ReadLive(p libvirt.Paths) (*Live, error) {
	l := NewLive(p)
	return l, l.Refresh()
}

// Refresh brings the cache up to date with the directories; a missing
// directory holds no guests.
func (c *Live) Refresh() error {
	seen := map[string]bool{}
	c.Complete, c.Notes, c.owners = true, nil, nil
	for _, dir := range c.dirs {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			if !strings.HasSuffix(name, ".xml") || e.IsDir() {
				continue
			}
			path := filepath.Join(dir, name)
			seen[path] = true
			c.update(path, dir == c.lxc)
		}
	}
	c.prune(seen)
	c.owners = libvirt.PortOwners(c.List())
	return nil
}

// update reads the live XML file at path again, unless its modification
// time, size and inode say it has not changed; lxc says it is in the LXC
// driver's directory. A file gone meanwhile is dropped; one that cannot
// be read or parsed is kept with its error, and read again at the next
// refresh.
func (c *Live) update(path string, lxc bool) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		delete(c.files, path)
		return
	}
	var ino uint64
	if err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
	}
	old := c.files[path]
	if err == nil && old != nil && old.err == nil && old.mod.Equal(fi.ModTime()) && old.size == fi.Size() && old.ino == ino {
		return
	}
	f := &liveFile{}
	if err == nil {
		f.mod, f.size, f.ino = fi.ModTime(), fi.Size(), ino
		var data []byte
		if data, err = os.ReadFile(path); errors.Is(err, fs.ErrNotExist) {
			delete(c.files, path)
			return
		}
		if err == nil {
			f.g, err = guest.Parse(data)
		}
		if err == nil && lxc {
			f.g.Type = "lxc" // it runs under the LXC driver
		}
	}
	f.err = err
	c.files[path] = f
}

// prune forgets the files that are no longer in the directory (not in
// seen), and notes those that could not be read: the cache is then not
// complete.
func (c *Live) prune(seen map[string]bool) {
	for path, f := range c.files {
		if !seen[path] {
			delete(c.files, path)
			continue
		}
		if f.err != nil {
			c.Complete = false
			c.Notes = append(c.Notes, path+": "+f.err.Error()+": skipped")
		}
	}
	slices.Sort(c.Notes)
}

// List returns the running guests, sorted by name.
func (c *Live) List() []*guest.Guest {
	out := make([]*guest.Guest, 0, len(c.files))
	for _, f := range c.files {
		if f.g != nil {
			out = append(out, f.g)
		}
	}
	slices.SortFunc(out, func(a, b *guest.Guest) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Get returns the running guests called name: one, or none, or a QEMU
// guest and a container (libvirt's drivers each have their own names), in
// the order of the directories.
func (c *Live) Get(name string) []*guest.Guest {
	var out []*guest.Guest
	for _, dir := range c.dirs {
		if f := c.files[filepath.Join(dir, name+".xml")]; f != nil && f.g != nil && f.g.Name == name {
			out = append(out, f.g)
		}
	}
	if len(out) > 0 {
		return out
	}
	// A file named otherwise than its guest (never libvirt's).
	for _, f := range c.files {
		if f.g != nil && f.g.Name == name {
			out = append(out, f.g)
		}
	}
	return out
}

// Owner returns the running guest whose live XML has port as a target
// device, or "".
func (c *Live) Owner(port string) string { return c.owners[port] }

// ReadDefined reads the persistent definitions in dirs (both drivers':
// host.Host.DefinedDirs), sorted by name. A file that cannot be read or
// parsed is skipped and said in notes.
func ReadDefined(dirs ...string) (guests []*guest.Guest, notes []string, err error) {
	for _, dir := range dirs {
		gs, skipped, err := libvirt.ReadGuests(dir)
		if err != nil {
			return nil, nil, err
		}
		for _, e := range skipped {
			notes = append(notes, e.Error()+": skipped")
		}
		guests = append(guests, gs...)
	}
	slices.SortStableFunc(guests, func(a, b *guest.Guest) int { return cmp.Compare(a.Name, b.Name) })
	return guests, notes, nil
}
