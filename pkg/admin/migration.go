package admin

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// incomingPaused reports whether a guest's live XML says the guest is the
// destination of a live migration whose CPUs have not started here yet.
// libvirt 9.0 writes, from "start begin" to the resume (measured):
//
//	<domstatus state='paused' reason='starting up' pid='…'>
//	  <job type='none' async='migration in' phase='prepare' …/>
//
// (the reason may also be 'migration'); the source of the same migration
// has async='migration out'. A post-copy destination runs (state
// 'running'): its guest is here, it is not waiting.
func incomingPaused(data []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	paused := false
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && t.Name.Local != "domstatus":
				return false // an inactive definition: nothing is migrating
			case depth == 1:
				paused = attr(t, "state") == "paused"
			case depth == 2 && t.Name.Local == "job":
				return paused && attr(t, "async") == "migration in"
			case depth == 2 && t.Name.Local == "domain":
				return false // the job, when there is one, comes before
			}
		case xml.EndElement:
			depth--
		}
	}
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// ReadIncoming returns the guests in libvirt's run directory (the live
// XMLs, one file per guest named after it) that are paused as the
// destination of a live migration: their ports wait for the resume.
func ReadIncoming(dir string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.xml"))
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, file := range files {
		f, err := os.Open(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// The root element and the job come first; the rest is the domain.
		head, err := io.ReadAll(io.LimitReader(f, 64<<10))
		f.Close()
		if err != nil {
			return nil, err
		}
		if incomingPaused(head) {
			out[strings.TrimSuffix(filepath.Base(file), ".xml")] = true
		}
	}
	return out, nil
}
