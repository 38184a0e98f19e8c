// Package testbed builds what the benchmarks measure against: bridges, guest
// taps and uplinks inside a network namespace of their own, domain XML with
// any number of bridged NICs, and the resets that put ports back to the
// kernel's defaults between runs.
package testbed
