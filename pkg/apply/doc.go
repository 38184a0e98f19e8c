// Package apply carries a plan out through a Writer (package kernel in
// production). Apply is all or nothing: when a step fails, the steps already
// done are undone in reverse order, so a guest is never left half managed.
// Cleanup is best effort: what is already gone counts as done.
package apply
