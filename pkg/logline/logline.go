package logline

import (
	"fmt"
	"log/syslog"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"

	"github.com/fdbhook/fdbhook/pkg/config"
)

// ParseLevel reads a level name of log_level or FDBHOOK_LOG_LEVEL, in any
// case; config.ParseLevel knows the names.
func ParseLevel(s string) (logrus.Level, error) {
	lvl, err := config.ParseLevel(strings.ToLower(s))
	if err != nil {
		return 0, fmt.Errorf("unknown log level %w", err)
	}
	return [...]logrus.Level{config.LevelError: logrus.ErrorLevel, config.LevelWarning: logrus.WarnLevel,
		config.LevelInfo: logrus.InfoLevel, config.LevelDebug: logrus.DebugLevel}[lvl], nil
}

// Formatter writes one line per entry: "PREFIX: [level: ]message
// key=value …", with the fields sorted by key and no level word for info.
// With GuestFirst, a "guest" field leads the message instead of following
// it ("PREFIX: guest NAME: message"), for a program that logs about many
// guests.
type Formatter struct {
	Prefix     string
	GuestFirst bool
}

// Format implements logrus.Formatter.
func (f Formatter) Format(e *logrus.Entry) ([]byte, error) {
	var b strings.Builder
	b.WriteString(f.Prefix + ": ")
	if e.Level != logrus.InfoLevel {
		b.WriteString(e.Level.String() + ": ")
	}
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if !f.GuestFirst || k != "guest" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if g, ok := e.Data["guest"]; ok && f.GuestFirst {
		fmt.Fprintf(&b, "guest %v: ", g)
	}
	b.WriteString(e.Message)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, e.Data[k])
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}

// Syslog returns a hook that sends entries to the system log as tag, with
// the daemon facility; it fails when the system log cannot be reached.
func Syslog(tag string) (*lsyslog.SyslogHook, error) {
	return lsyslog.NewSyslogHook("", "", syslog.LOG_DAEMON|syslog.LOG_INFO, tag)
}
