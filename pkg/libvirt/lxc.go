package libvirt

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Container is what libvirt's live state says of a running container.
type Container struct {
	Name string
	// ControllerPid is libvirt_lxc, the container's controller (<domstatus pid>).
	ControllerPid int
	// InitPid is the container's init (<init pid>); 0 until the controller
	// has told libvirtd, which on libvirt 9.0 is after `started begin`.
	InitPid int
}

// Container reads the live state of running container name; nil when
// libvirt has none (the container is not running).
func (f *Files) Container(name string) (*Container, error) {
	if f.paths.LxcRunDir == "" {
		return nil, nil
	}
	if strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("invalid container name %q", name)
	}
	path := filepath.Join(f.paths.LxcRunDir, name+".xml")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := parseContainer(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Name = name
	return c, nil
}

// parseContainer reads <domstatus pid> and its child <init pid>. libvirt
// writes its private data, <init> among them, before the <domain> it
// carries, so the reading stops at <init> and the domain, as long as the
// container's NIC list, is not read at all (parsing it cost the lxc hook
// 2 ms with 64 NICs); any other child before it is skipped.
func parseContainer(data []byte) (*Container, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	st, err := nextStart(d)
	if err != nil {
		return nil, err
	}
	if st.Name.Local != "domstatus" {
		return nil, fmt.Errorf("no <domstatus> element: the root is <%s>", st.Name.Local)
	}
	c := &Container{}
	if c.ControllerPid, err = pidAttr(st, "pid"); err != nil {
		return nil, fmt.Errorf("<domstatus pid>: %w", err)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("<domstatus>: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return c, nil // no <init>: the controller has not named it
		case xml.StartElement:
			if t.Name.Local == "init" {
				if c.InitPid, err = pidAttr(t, "pid"); err != nil {
					return nil, fmt.Errorf("<init pid>: %w", err)
				}
				return c, nil
			}
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("<%s>: %w", t.Name.Local, err)
			}
		}
	}
}

// nextStart returns the document's first element.
func nextStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return xml.StartElement{}, errors.New("no element")
		}
		if err != nil {
			return xml.StartElement{}, err
		}
		if st, ok := tok.(xml.StartElement); ok {
			return st, nil
		}
	}
}

func pidAttr(e xml.StartElement, attr string) (int, error) {
	v := ""
	for _, a := range e.Attr {
		if a.Name.Local == attr {
			v = a.Value
		}
	}
	if v == "" {
		return 0, nil
	}
	pid, err := strconv.Atoi(v)
	if err != nil || pid < 0 {
		return 0, fmt.Errorf("not a process id: %q", v)
	}
	return pid, nil
}

// ContainerInit returns the pid of the init process of running container
// name: <init pid> of its live state, or, while that is still 0 (at
// `started begin`), the one child of its controller, libvirt_lxc, which
// clones the container's init and nothing else. When neither names a
// process, pid is 0 and why says so.
func (f *Files) ContainerInit(name string) (pid int, why string, err error) {
	c, err := f.Container(name)
	if err != nil {
		return 0, "", err
	}
	switch {
	case c == nil:
		return 0, fmt.Sprintf("libvirt has no live state for container %s in %s", name, f.paths.LxcRunDir), nil
	case c.InitPid > 0:
		return c.InitPid, "", nil
	case c.ControllerPid == 0:
		return 0, "libvirt's live state names neither the container's init nor its controller", nil
	}
	children, err := f.children(c.ControllerPid)
	if err != nil {
		return 0, "", fmt.Errorf("children of the container's controller (pid %d): %w", c.ControllerPid, err)
	}
	if len(children) != 1 {
		return 0, fmt.Sprintf("libvirt's live state has no init pid yet and the container's controller (pid %d) has %d children, not one",
			c.ControllerPid, len(children)), nil
	}
	return children[0], "", nil
}

// children lists the child processes of pid (every thread's, from
// /proc/PID/task/*/children).
func (f *Files) children(pid int) ([]int, error) {
	tasks, err := filepath.Glob(filepath.Join(f.paths.ProcDir, strconv.Itoa(pid), "task", "*", "children"))
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("no process %d in %s", pid, f.paths.ProcDir)
	}
	var out []int
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the thread ended meanwhile
		}
		if err != nil {
			return nil, err
		}
		for _, field := range strings.Fields(string(data)) {
			child, err := strconv.Atoi(field)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a process id", t, field)
			}
			out = append(out, child)
		}
	}
	return out, nil
}
