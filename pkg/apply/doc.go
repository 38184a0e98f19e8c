// Package apply carries a plan out through a model.Writer (package kernel in
// production). Apply is all or nothing for a guest: when a step fails, the
// steps already done are undone in reverse order, so a guest is never left
// half managed. The one exception is bridge policy: turning vlan_filtering
// on, and writing the bridge's entries again for their ports' VLANs as
// that implies, stay done, because other guests rely on them. Cleanup is
// best effort: what is already gone counts as done.
package apply
