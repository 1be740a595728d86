//go:build !faultinject

package fault

// Enabled reports whether this build injects faults.
const Enabled = false

// Arm makes point p panic the next time it is hit (faultinject builds only).
func Arm(Point) {}

// Hit panics if p is armed (faultinject builds only).
func Hit(Point) {}
