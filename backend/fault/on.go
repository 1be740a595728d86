//go:build faultinject

package fault

import (
	"fmt"
	"sync/atomic"
)

// Enabled reports whether this build injects faults.
const Enabled = true

var armed [3]atomic.Bool

// Arm makes point p panic the next time it is hit.
func Arm(p Point) { armed[p].Store(true) }

// Hit panics if p is armed, disarming it.
func Hit(p Point) {
	if armed[p].Load() && armed[p].CompareAndSwap(true, false) {
		panic(fmt.Sprintf("fault injected at point %d", p))
	}
}
