package watch

import (
	"io"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/logline"
)

// loadConfig reads the configuration at start (the worker reads it again
// on every change) and opens the log at its log_level, or at envLevel
// (FDBHOOK_LOG_LEVEL) when that is set; kept says the journal keeps
// stderr (under systemd).
func loadConfig(path, envLevel string, stderr io.Writer, kept bool) (*config.Config, *logrus.Logger, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	level := cfg.LogLevel
	if envLevel != "" {
		level = envLevel
	}
	log, err := NewLogger(stderr, level, func(tag string) (logrus.Hook, error) { return logline.Syslog(tag) }, kept)
	if err != nil {
		return nil, nil, err
	}
	return cfg, log, nil
}

// NewLogger logs "fdbhook watch: [level: ][guest NAME: ]message
// key=value" to stderr and, through the hook syslog returns (nil: none),
// to the system log. When the system log cannot be reached it says so at
// once, on stderr, unless stderrKept (the journal keeps it): a watcher
// started with stderr to /dev/null would otherwise log nowhere without a
// word.
func NewLogger(stderr io.Writer, level string, syslog func(tag string) (logrus.Hook, error), stderrKept bool) (*logrus.Logger, error) {
	lvl, err := logline.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	log := logrus.New()
	log.Out = stderr
	log.Level = lvl
	log.Formatter = logFormat
	if syslog == nil {
		return log, nil
	}
	h, err := syslog("fdbhook-watch")
	if err != nil && stderrKept {
		log.Debugf("no system log (%v): logging to standard error, which the journal keeps", err)
		return log, nil
	}
	if err != nil {
		log.Warnf("no system log (%v): logging to standard error only, so with standard error sent to /dev/null nothing is kept; "+
			"run it as fdbhook.service (the journal keeps it), send standard error to a file, or start a syslog daemon", err)
		return log, nil
	}
	log.AddHook(h)
	return log, nil
}

// logFormat puts the guest first: the watcher logs about every guest.
var logFormat = logline.Formatter{Prefix: "fdbhook watch", GuestFirst: true}
