// Package admin is the admin's reports, from outside hook mode: is fdbhook
// working on this host (status, and its metrics), would it work here
// (doctor), and what a reconcile did (FormatResult). The state they report
// on and every decision in it (whose an entry is, which are stale, whose a
// duplicate MAC is, what a reconcile changes) are the engine's, package
// manage; admin only reads, words and lays them out. It reads only the
// kernel, the configuration and libvirt's own files, never the libvirt
// API.
package admin
