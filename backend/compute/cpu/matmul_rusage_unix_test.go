//go:build unix

package cpu

import (
	"syscall"
	"time"
)

// cpuTime is the process's user+system CPU time: with the machine shared, work per CPU second is a steadier
// figure than work per wall second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
