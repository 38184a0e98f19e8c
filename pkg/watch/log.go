package watch

import (
	"io"

	"github.com/sirupsen/logrus"

	"github.com/fdbhook/fdbhook/pkg/config"
	"github.com/fdbhook/fdbhook/pkg/logline"
)

// loadConfig reads the configuration at start (the worker reads it again
// on every change) and opens the log at its log_level, or at envLevel
// (FDBHOOK_LOG_LEVEL) when that is set.
func loadConfig(path, envLevel string, stderr io.Writer) (*config.Config, *logrus.Logger, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	level := cfg.LogLevel
	if envLevel != "" {
		level = envLevel
	}
	log, err := NewLogger(stderr, level, true)
	if err != nil {
		return nil, nil, err
	}
	return cfg, log, nil
}

// NewLogger logs "fdbhook watch: [level: ][guest NAME: ]message
// key=value" to stderr and, when useSyslog is set and syslog is reachable,
// to the system log.
func NewLogger(stderr io.Writer, level string, useSyslog bool) (*logrus.Logger, error) {
	lvl, err := logline.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	log := logrus.New()
	log.Out = stderr
	log.Level = lvl
	log.Formatter = logFormat
	if useSyslog {
		if h, err := logline.Syslog("fdbhook-watch"); err == nil {
			log.AddHook(h)
		}
	}
	return log, nil
}

// logFormat puts the guest first: the watcher logs about every guest.
var logFormat = logline.Formatter{Prefix: "fdbhook watch", GuestFirst: true}
