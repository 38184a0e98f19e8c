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
// (/run/libvirt/qemu/NAME.xml) and containers (/run/libvirt/lxc/NAME.xml).
// A refresh stats every file and parses
// again only those that changed, so a resync of hundreds of guests does
// not parse hundreds of documents.
type liveGuests struct {
	dirs  []string
	files map[string]*liveFile // by path
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

func newLiveGuests(dirs ...string) *liveGuests {
	return &liveGuests{dirs: slices.DeleteFunc(dirs, func(d string) bool { return d == "" }), files: map[string]*liveFile{}}
}

// refresh brings the cache up to date with the directories; a missing
// directory holds no guests.
func (c *liveGuests) refresh() error {
	seen := map[string]bool{}
	c.complete, c.notes, c.owners = true, nil, nil
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
			c.update(path)
		}
	}
	c.prune(seen)
	c.owners = libvirt.PortOwners(c.list())
	return nil
}

// update reads the live XML file at path again, unless its modification
// time, size and inode say it has not changed. A file gone meanwhile is
// dropped; one that cannot be read or parsed is kept with its error, and
// read again at the next refresh.
func (c *liveGuests) update(path string) {
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
	}
	f.err = err
	c.files[path] = f
}

// prune forgets the files that are no longer in the directory (not in
// seen), and notes those that could not be read: the cache is then not
// complete.
func (c *liveGuests) prune(seen map[string]bool) {
	for path, f := range c.files {
		if !seen[path] {
			delete(c.files, path)
			continue
		}
		if f.err != nil {
			c.complete = false
			c.notes = append(c.notes, path+": "+f.err.Error()+": skipped")
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

// get returns the running guests called name: one, or none, or a QEMU
// guest and a container (libvirt's drivers each have their own names), in
// the order of the directories.
func (c *liveGuests) get(name string) []*guest.Guest {
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

// owner returns the running guest whose live XML has port as a target
// device, or "".
func (c *liveGuests) owner(port string) string { return c.owners[port] }
