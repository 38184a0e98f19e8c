// Package version holds the release version stamped in at build time.
package version

// Version is set with -ldflags "-X github.com/fdbhook/fdbhook/pkg/version.Version=…".
var Version = "dev"
