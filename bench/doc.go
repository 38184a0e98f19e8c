// Package bench holds fdbhook's benchmarks: the in-process cost of planning
// and applying a guest start (go test -bench), and, in its subdirectories,
// the driver that times the hook binaries against a shell baseline and the
// exec floor (see run.sh and results.md).
package bench
