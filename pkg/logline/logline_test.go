package logline

import (
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestFormatter(t *testing.T) {
	entry := func(lvl logrus.Level, msg string, data logrus.Fields) *logrus.Entry {
		return &logrus.Entry{Level: lvl, Message: msg, Data: data}
	}
	for _, tc := range []struct {
		f    Formatter
		e    *logrus.Entry
		want string
	}{
		{Formatter{Prefix: "fdbhook"}, entry(logrus.InfoLevel, "applied", nil), "fdbhook: applied\n"},
		{Formatter{Prefix: "fdbhook"}, entry(logrus.WarnLevel, "undone", logrus.Fields{"nic": "net0", "guest": "g1", "bridge": "br0"}),
			"fdbhook: warning: undone bridge=br0 guest=g1 nic=net0\n"},
		{Formatter{Prefix: "fdbhook watch", GuestFirst: true}, entry(logrus.ErrorLevel, "failed", logrus.Fields{"nic": "net0", "guest": "g1"}),
			"fdbhook watch: error: guest g1: failed nic=net0\n"},
		{Formatter{Prefix: "fdbhook watch", GuestFirst: true}, entry(logrus.DebugLevel, "resync", logrus.Fields{"why": "timer"}),
			"fdbhook watch: debug: resync why=timer\n"},
	} {
		got, err := tc.f.Format(tc.e)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("%+v: got %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]logrus.Level{"debug": logrus.DebugLevel, "INFO": logrus.InfoLevel,
		"Warning": logrus.WarnLevel, "warn": logrus.WarnLevel, "error": logrus.ErrorLevel} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	// logrus knows these; the configuration does not, so neither program
	// may accept them.
	for _, in := range []string{"trace", "fatal", "panic", ""} {
		if _, err := ParseLevel(in); err == nil || !strings.Contains(err.Error(), "unknown log level") {
			t.Errorf("ParseLevel(%q) = %v, want an unknown log level error", in, err)
		}
	}
}
