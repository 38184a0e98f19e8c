package watch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Files is the source of file changes: libvirt rewriting a running
// guest's live XML (QemuRunDir/NAME.xml: a NIC plugged, unplugged or
// moved; libvirt writes it after its device events) and the
// configuration file changing (a reload). It uses inotify on the two
// directories; a directory that does not exist yet is looked for again
// every few seconds.
type Files struct {
	QemuRunDir string
	ConfigPath string
	Log        *logrus.Logger
	// Rescan is how often a missing directory is looked for (default 5 s).
	Rescan time.Duration
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
	cfgDir, cfgName := filepath.Split(s.ConfigPath)
	dirs := map[string]int{s.QemuRunDir: -1, filepath.Clean(cfgDir): -1}
	add := func() {
		for dir, wd := range dirs {
			if wd >= 0 {
				continue
			}
			if wd, err := unix.InotifyAddWatch(fd, dir, fileEvents|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF); err == nil {
				dirs[dir] = wd
			}
		}
	}
	add()
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		f.Close()
	}()
	defer close(stop)
	reads := make(chan []byte)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 64<<10)
		for {
			n, err := f.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) && ctx.Err() == nil {
					s.Log.Errorf("inotify: %v", err)
				}
				close(reads)
				return
			}
			data := append([]byte(nil), buf[:n]...)
			select {
			case reads <- data:
			case <-ctx.Done():
				close(reads)
				return
			}
		}
	}()
	defer func() {
		f.Close()
		<-readDone
	}()
	rescan := s.Rescan
	if rescan == 0 {
		rescan = 5 * time.Second
	}
	retry := time.NewTicker(rescan)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			add()
		case data, ok := <-reads:
			if !ok {
				return
			}
			for _, ev := range parseInotify(data) {
				switch {
				case ev.mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0:
					for dir, wd := range dirs {
						if wd == int(ev.wd) {
							dirs[dir] = -1
						}
					}
				case ev.wd == int32(dirs[filepath.Clean(cfgDir)]) && ev.name == cfgName:
					emit(Event{Reload: true, Why: "configuration file changed"})
				case ev.wd == int32(dirs[s.QemuRunDir]) && strings.HasSuffix(ev.name, ".xml"):
					emit(Event{Guest: strings.TrimSuffix(ev.name, ".xml"), Why: "live XML " + ev.name + " changed"})
				}
			}
		}
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
