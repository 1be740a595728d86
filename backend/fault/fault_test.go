package fault

import "testing"

func TestArmHit(t *testing.T) {
	Hit(Device) // not armed: nothing
	Arm(Device)
	defer func() {
		r := recover()
		if Enabled != (r != nil) {
			t.Fatalf("enabled %v, recovered %v", Enabled, r)
		}
		Hit(Device) // disarmed by the first hit
	}()
	Hit(Device)
}
