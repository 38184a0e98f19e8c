package hook

import (
	"io"

	"github.com/sirupsen/logrus"
	lsyslog "github.com/sirupsen/logrus/hooks/syslog"

	"github.com/fdbhook/fdbhook/pkg/logline"
)

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
	both.AddHook(&levelHook{max: stderrLevel, out: stderr, fmt: logline.Formatter{Prefix: "fdbhook"}})
	// Without a system log, entries below stderr's level go nowhere: the
	// logger's level drops them before they are formatted (a guest with
	// 64 NICs logs 64 info lines).
	both.Level, sys.Level = stderrLevel, logrus.PanicLevel
	if useSyslog {
		if h, err := logline.Syslog(tag); err == nil {
			sh := &syslogHook{max: syslogLevel, hook: h}
			both.AddHook(sh)
			sys.AddHook(sh)
			both.Level, sys.Level = max(stderrLevel, syslogLevel), syslogLevel
		}
	}
	return both, sys
}
