// Package logline is how fdbhook's programs log: the log levels named by
// log_level and FDBHOOK_LOG_LEVEL, the one-line format of a message on
// stderr, and the system log's facility. The hooks and the watcher share
// it, so their lines read alike.
package logline
