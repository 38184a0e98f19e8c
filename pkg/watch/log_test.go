package watch

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestNoSyslogSaidOnStderr: without a system log, the watcher says at once
// on stderr that it logs there only.
func TestNoSyslogSaidOnStderr(t *testing.T) {
	var b bytes.Buffer
	noSyslog := func(string) (logrus.Hook, error) {
		return nil, errors.New("Unix syslog delivery error")
	}
	if _, err := NewLogger(&b, "info", noSyslog, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "warning: no system log (Unix syslog delivery error): logging to standard error only") {
		t.Errorf("stderr %q, want the missing system log said", b.String())
	}
	b.Reset()
	if _, err := NewLogger(&b, "info", func(string) (logrus.Hook, error) { return nopHook{}, nil }, false); err != nil || b.Len() != 0 {
		t.Errorf("with a system log: %v, stderr %q, want nothing", err, b.String())
	}
	if _, err := NewLogger(&b, "info", noSyslog, true); err != nil || b.Len() != 0 {
		t.Errorf("under systemd (the journal keeps stderr): %v, stderr %q, want nothing", err, b.String())
	}
}

type nopHook struct{}

func (nopHook) Levels() []logrus.Level   { return logrus.AllLevels }
func (nopHook) Fire(*logrus.Entry) error { return nil }
