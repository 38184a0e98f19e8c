// Package qemuexit ends a qemu hook process for an event fdbhook ignores,
// in its init, before the hook's heavier packages initialise (see package
// events). cmd/qemu-hook imports it for that effect alone.
package qemuexit

import "github.com/fdbhook/fdbhook/pkg/events"

func init() { events.ExitIfIgnored(events.Qemu) }
