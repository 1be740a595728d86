package engine

import (
	"strings"

	"github.com/omnikv-triton/omnikv-triton/backend/fault"
)

// Fault injection (builds with -tags faultinject only): a request whose text contains one of these markers
// makes the step that carries it panic, in the scheduler or in a device worker, so that an end-to-end test
// can check the panic boundary through a real server.
const (
	faultScheduler = fault.Scheduler
	faultDevice    = fault.Device
)

var faultMarkers = map[string]fault.Point{"OMNIKV_FAULT_SCHEDULER": faultScheduler, "OMNIKV_FAULT_DEVICE": faultDevice}

// faultOf returns the fault a request's text asks for (0 when none, or in normal builds).
func faultOf(text string) fault.Point {
	if !fault.Enabled {
		return 0
	}
	for m, p := range faultMarkers {
		if strings.Contains(text, m) {
			return p
		}
	}
	return 0
}

// faultPoint arms and hits the faults of a step's sequences: the scheduler point panics here, the device
// point in the forward pass's first parallel loop.
func faultPoint(owners []*Handle) {
	if !fault.Enabled {
		return
	}
	for _, h := range owners {
		switch h.fault {
		case faultScheduler:
			fault.Arm(faultScheduler)
			fault.Hit(faultScheduler)
		case faultDevice:
			fault.Arm(faultDevice)
		}
	}
}
