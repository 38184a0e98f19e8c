// Package lxcexit ends an lxc hook process for an event fdbhook ignores,
// in its init, before the hook's heavier packages initialise (see package
// events). cmd/lxc-hook imports it for that effect alone.
package lxcexit

import "github.com/fdbhook/fdbhook/pkg/events"

func init() { events.ExitIfIgnored(events.Lxc) }
