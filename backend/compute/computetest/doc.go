// Package computetest is the conformance suite every compute.Device runs: each operation against a plain
// float64 reference loop written here, over random inputs of awkward sizes, for every weight type and both KV
// element types. A device's own test calls Run.
package computetest
