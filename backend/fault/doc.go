// Package fault injects panics at named points, for tests of the panic boundary (a panic in the scheduler
// or a device worker must fail that step's sequences, not the server). It does nothing unless the binary is
// built with the build tag faultinject; then a point panics once each time it is armed. The engine arms
// points from request text (see engine.faultPoint), so that an end-to-end test can trigger them through a
// real server.
package fault

// Point is a place where a panic can be injected.
type Point int32

// Points.
const (
	Scheduler Point = iota + 1 // the engine's scheduler, while it plans a step
	Device                     // a CPU device worker, inside a parallel loop
)
