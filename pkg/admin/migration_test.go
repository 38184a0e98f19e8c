package admin

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIncomingPaused(t *testing.T) {
	const domain = `<domain type='qemu'><name>g</name></domain>`
	for _, tc := range []struct {
		name string
		xml  string
		want bool
	}{
		{"destination before the resume (libvirt 9.0)", `<domstatus state='paused' reason='starting up' pid='6591'>
  <taint flag='high-privileges'/>
  <job type='none' async='migration in' phase='prepare' flags='0x1' asyncStarted='1796011189918'/>` + domain + `</domstatus>`, true},
		{"destination, reason migration", `<domstatus state='paused' reason='migration' pid='1'><job type='none' async='migration in' phase='finish3'/>` + domain + `</domstatus>`, true},
		{"source of a migration", `<domstatus state='running' reason='booted' pid='6535'><job type='none' async='migration out' phase='begin3'/>` + domain + `</domstatus>`, false},
		{"source paused for the switch-over", `<domstatus state='paused' reason='migration' pid='1'><job type='none' async='migration out' phase='perform3'/>` + domain + `</domstatus>`, false},
		{"post-copy destination runs", `<domstatus state='running' reason='postcopy' pid='1'><job type='none' async='migration in' phase='finish3'/>` + domain + `</domstatus>`, false},
		{"paused by the user", `<domstatus state='paused' reason='user' pid='1'>` + domain + `</domstatus>`, false},
		{"running, no job", `<domstatus state='running' reason='booted' pid='1'>` + domain + `</domstatus>`, false},
		{"job inside the domain is not libvirt's", `<domstatus state='paused' reason='user' pid='1'><domain><job async='migration in'/></domain></domstatus>`, false},
		{"inactive XML", domain, false},
		{"broken", `<domstatus state='paused'`, false},
	} {
		if got := incomingPaused([]byte(tc.xml)); got != tc.want {
			t.Errorf("%s: incomingPaused = %v, want %v", tc.name, got, tc.want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "in.xml"), []byte(`<domstatus state='paused' reason='starting up'><job type='none' async='migration in'/>`+domain+`</domstatus>`), 0o644)
	os.WriteFile(filepath.Join(dir, "run.xml"), []byte(`<domstatus state='running' reason='booted'>`+domain+`</domstatus>`), 0o644)
	got, err := ReadIncoming(dir)
	if err != nil || len(got) != 1 || !got["in"] {
		t.Errorf("ReadIncoming = %v, %v; want only guest in", got, err)
	}
}
