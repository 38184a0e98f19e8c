// Package bench holds fdbhook's benchmarks, a Go module of its own over
// the product (bench/go.mod, with a replace to the working tree: the
// product module does not contain it): the in-process cost of planning
// and applying a guest start (go test -bench . in bench/), and, in its
// subdirectories, the driver that times the hook binaries against a shell
// baseline and the exec floor and renders the report (see run.sh and
// results.md).
package bench
