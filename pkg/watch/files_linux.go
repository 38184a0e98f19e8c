package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Files is the source of file changes: libvirt rewriting a running
// guest's or container's live XML (NAME.xml in one of GuestDirs: a NIC
// plugged, unplugged or moved; libvirt writes it after its device events,
// and the LXC driver, which the watcher has no event stream from, only
// there) and the configuration file changing (a reload). It uses inotify
// on those directories; a directory that does not exist yet is looked for
// again every few seconds.
type Files struct {
	// GuestDirs are libvirt's run directories of live XML:
	// /run/libvirt/qemu and /run/libvirt/lxc.
	GuestDirs  []string
	ConfigPath string
	Log        *logrus.Logger
	// Rescan is how often a missing directory is looked for (default 5 s).
	Rescan time.Duration
	// Clock times the rescans; nil means SystemClock.
	Clock Clock
}

func (s *Files) Name() string { return "files" }

const fileEvents = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_CREATE | unix.IN_DELETE

// Run watches until ctx ends.
func (s *Files) Run(ctx context.Context, emit func(Event)) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		s.Log.Errorf("inotify: %v: live XML and configuration changes are seen at the next resync only", err)
		return
	}
	// An *os.File puts the descriptor in the runtime's poller, so Close
	// (below, when ctx ends) wakes the reader.
	f := os.NewFile(uintptr(fd), "inotify")
	ws := s.newWatches(fd)
	ws.add(nil)
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		f.Close()
	}()
	defer close(stop)
	reads, readDone := s.read(ctx, f)
	defer func() {
		f.Close()
		<-readDone
	}()
	rescan, clock := s.Rescan, s.Clock
	if rescan == 0 {
		rescan = 5 * time.Second
	}
	if clock == nil {
		clock = SystemClock{}
	}
	retry, stopRetry := clock.After(rescan)
	defer func() { stopRetry() }()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry:
			ws.add(emit)
			retry, stopRetry = clock.After(rescan)
		case data, ok := <-reads:
			if !ok {
				return
			}
			for _, ev := range parseInotify(data) {
				ws.event(ev, emit)
			}
		}
	}
}

// read reads inotify events from f in a goroutine of its own, until f is
// closed or ctx ends; reads is closed then, and done once it returned.
func (s *Files) read(ctx context.Context, f *os.File) (reads <-chan []byte, done <-chan struct{}) {
	out := make(chan []byte)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(out)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) && ctx.Err() == nil {
					s.Log.Errorf("inotify: %v", err)
				}
				return
			}
			data := append([]byte(nil), buf[:n]...)
			select {
			case out <- data:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, readDone
}

// watches are the directories Files watches, by inotify descriptor;
// -1 while a directory is not watched (it does not exist yet, or went).
type watches struct {
	fd              int
	dirs            map[string]int
	guestDirs       []string
	cfgDir, cfgName string
}

func (s *Files) newWatches(fd int) *watches {
	cfgDir, cfgName := filepath.Split(s.ConfigPath)
	cfgDir = filepath.Clean(cfgDir)
	ws := &watches{fd: fd, dirs: map[string]int{cfgDir: -1}, cfgDir: cfgDir, cfgName: cfgName}
	for _, d := range s.GuestDirs {
		if d != "" {
			ws.dirs[d] = -1
			ws.guestDirs = append(ws.guestDirs, d)
		}
	}
	return ws
}

// guestDir reports whether wd watches one of the live XML directories.
func (ws *watches) guestDir(wd int32) bool {
	for _, d := range ws.guestDirs {
		if ws.dirs[d] == int(wd) {
			return true
		}
	}
	return false
}

// add watches the directories not watched yet, those that exist now.
// A live XML directory watched again after the first try (created, or
// removed and created again) may already hold files nobody saw written:
// emit, when not nil, gets a resync for it.
func (ws *watches) add(emit func(Event)) {
	for dir, wd := range ws.dirs {
		if wd >= 0 {
			continue
		}
		wd, err := unix.InotifyAddWatch(ws.fd, dir, fileEvents|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF)
		if err != nil {
			continue
		}
		ws.dirs[dir] = wd
		if emit != nil && slices.Contains(ws.guestDirs, dir) {
			emit(Event{Resync: true, Why: "live XML directory " + dir + " watched again"})
		}
	}
}

// event turns one inotify event into what it means: a directory gone (to
// be looked for again), the configuration changed (a reload), or a guest's
// live XML changed.
func (ws *watches) event(ev inotifyEvent, emit func(Event)) {
	switch {
	case ev.mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0:
		for dir, wd := range ws.dirs {
			if wd == int(ev.wd) {
				ws.dirs[dir] = -1
			}
		}
	case ev.wd == int32(ws.dirs[ws.cfgDir]) && ev.name == ws.cfgName:
		emit(Event{Reload: true, Why: "configuration file changed"})
	case strings.HasSuffix(ev.name, ".xml") && ws.guestDir(ev.wd):
		emit(Event{Guest: strings.TrimSuffix(ev.name, ".xml"), Why: "live XML " + ev.name + " changed"})
	}
}

type inotifyEvent struct {
	wd   int32
	mask uint32
	name string
}

func parseInotify(b []byte) []inotifyEvent {
	var out []inotifyEvent
	for len(b) >= unix.SizeofInotifyEvent {
		raw := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
		end := unix.SizeofInotifyEvent + int(raw.Len)
		if end > len(b) {
			break
		}
		name := strings.TrimRight(string(b[unix.SizeofInotifyEvent:end]), "\x00")
		out = append(out, inotifyEvent{wd: raw.Wd, mask: raw.Mask, name: name})
		b = b[end:]
	}
	return out
}
