package watch

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

// liveGuests caches the parsed live XML of the running guests
// (/run/libvirt/qemu/NAME.xml). A refresh stats every file and parses
// again only those that changed, so a resync of hundreds of guests does
// not parse hundreds of documents.
type liveGuests struct {
	dir   string
	files map[string]*liveFile // by file name
	// complete is false when a file could not be read or parsed.
	complete bool
	notes    []string
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

func newLiveGuests(dir string) *liveGuests {
	return &liveGuests{dir: dir, files: map[string]*liveFile{}}
}

// refresh brings the cache up to date with the directory.
func (c *liveGuests) refresh() error {
	ents, err := os.ReadDir(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		clear(c.files)
		c.complete, c.notes, c.owners = true, nil, nil
		return nil
	}
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(ents))
	c.complete, c.notes = true, nil
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".xml") || e.IsDir() {
			continue
		}
		seen[name] = true
		c.update(name)
	}
	c.prune(seen)
	c.owners = libvirt.PortOwners(c.list())
	return nil
}

// update reads the live XML file name again, unless its modification
// time, size and inode say it has not changed. A file gone meanwhile is
// dropped; one that cannot be read or parsed is kept with its error, and
// read again at the next refresh.
func (c *liveGuests) update(name string) {
	path := filepath.Join(c.dir, name)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		delete(c.files, name)
		return
	}
	var ino uint64
	if err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
	}
	old := c.files[name]
	if err == nil && old != nil && old.err == nil && old.mod.Equal(fi.ModTime()) && old.size == fi.Size() && old.ino == ino {
		return
	}
	f := &liveFile{}
	if err == nil {
		f.mod, f.size, f.ino = fi.ModTime(), fi.Size(), ino
		var data []byte
		if data, err = os.ReadFile(path); errors.Is(err, fs.ErrNotExist) {
			delete(c.files, name)
			return
		}
		if err == nil {
			f.g, err = guest.Parse(data)
		}
	}
	f.err = err
	c.files[name] = f
}

// prune forgets the files that are no longer in the directory (not in
// seen), and notes those that could not be read: the cache is then not
// complete.
func (c *liveGuests) prune(seen map[string]bool) {
	for name, f := range c.files {
		if !seen[name] {
			delete(c.files, name)
			continue
		}
		if f.err != nil {
			c.complete = false
			c.notes = append(c.notes, filepath.Join(c.dir, name)+": "+f.err.Error()+": skipped")
		}
	}
	slices.Sort(c.notes)
}

// list returns the running guests, sorted by name.
func (c *liveGuests) list() []*guest.Guest {
	out := make([]*guest.Guest, 0, len(c.files))
	for _, f := range c.files {
		if f.g != nil {
			out = append(out, f.g)
		}
	}
	slices.SortFunc(out, func(a, b *guest.Guest) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// get returns the running guest called name, or nil.
func (c *liveGuests) get(name string) *guest.Guest {
	if f := c.files[name+".xml"]; f != nil && f.g != nil && f.g.Name == name {
		return f.g
	}
	for _, f := range c.files {
		if f.g != nil && f.g.Name == name {
			return f.g
		}
	}
	return nil
}

// owner returns the running guest whose live XML has port as a target
// device, or "".
func (c *liveGuests) owner(port string) string { return c.owners[port] }
