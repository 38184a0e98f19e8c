package hook

import (
	"fmt"
	"io"
	"log/syslog"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"

	"github.com/fdbhook/fdbhook/pkg/config"
)

// parseLevel accepts the level names of the config file and
// FDBHOOK_LOG_LEVEL (in any case).
func parseLevel(s string) (logrus.Level, error) {
	lvl, err := config.ParseLevel(strings.ToLower(s))
	if err != nil {
		return 0, fmt.Errorf("unknown log level %w", err)
	}
	return [...]logrus.Level{config.LevelError: logrus.ErrorLevel, config.LevelWarning: logrus.WarnLevel,
		config.LevelInfo: logrus.InfoLevel, config.LevelDebug: logrus.DebugLevel}[lvl], nil
}

// levelHook sends entries at or above a level to a writer, formatted.
type levelHook struct {
	max logrus.Level
	out io.Writer
	fmt logrus.Formatter
}

func (h *levelHook) Levels() []logrus.Level { return logrus.AllLevels[:h.max+1] }

func (h *levelHook) Fire(e *logrus.Entry) error {
	b, err := h.fmt.Format(e)
	if err != nil {
		return err
	}
	_, err = h.out.Write(b)
	return err
}

// lineFormatter writes "fdbhook: warning: message key=value …".
type lineFormatter struct{}

func (lineFormatter) Format(e *logrus.Entry) ([]byte, error) {
	var b strings.Builder
	b.WriteString("fdbhook: ")
	if e.Level != logrus.InfoLevel {
		b.WriteString(e.Level.String() + ": ")
	}
	b.WriteString(e.Message)
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, e.Data[k])
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}

// syslogHook forwards entries at or above a level to the system log.
type syslogHook struct {
	max  logrus.Level
	hook *lsyslog.SyslogHook
}

func (h *syslogHook) Levels() []logrus.Level     { return logrus.AllLevels[:h.max+1] }
func (h *syslogHook) Fire(e *logrus.Entry) error { return h.hook.Fire(e) }

// newLoggers builds a logger that writes to stderr from stderrLevel up and to
// syslog (when it is reachable) from syslogLevel up, and a second one that
// writes to syslog only (for a failure that is also printed on stderr as
// the hook's one-line message).
func newLoggers(stderr io.Writer, stderrLevel, syslogLevel logrus.Level, useSyslog bool, tag string) (both, sys *logrus.Logger) {
	both, sys = logrus.New(), logrus.New()
	both.Out, sys.Out = io.Discard, io.Discard
	both.AddHook(&levelHook{max: stderrLevel, out: stderr, fmt: lineFormatter{}})
	// Without a system log, entries below stderr's level go nowhere: the
	// logger's level drops them before they are formatted (a guest with
	// 64 NICs logs 64 info lines).
	both.Level, sys.Level = stderrLevel, logrus.PanicLevel
	if useSyslog {
		if h, err := lsyslog.NewSyslogHook("", "", syslog.LOG_DAEMON|syslog.LOG_INFO, tag); err == nil {
			sh := &syslogHook{max: syslogLevel, hook: h}
			both.AddHook(sh)
			sys.AddHook(sh)
			both.Level, sys.Level = max(stderrLevel, syslogLevel), syslogLevel
		}
	}
	return both, sys
}
