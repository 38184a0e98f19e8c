// Package config reads and validates /etc/fdbhook/fdbhook.toml: which bridges
// and libvirt networks fdbhook manages, what a failed apply does to the guest
// start, and per-bridge policy. It is pure: no kernel access.
package config
