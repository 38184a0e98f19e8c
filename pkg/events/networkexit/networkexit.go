// Package networkexit ends a network hook process for an event fdbhook
// ignores, in its init, before the hook's heavier packages initialise (see
// package events). cmd/network-hook imports it for that effect alone.
package networkexit

import "github.com/fdbhook/fdbhook/pkg/events"

func init() { events.ExitIfIgnored(events.Network) }
