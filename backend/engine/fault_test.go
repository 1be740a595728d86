//go:build faultinject

package engine

import (
	"context"
	"strings"
	"testing"
)

// TestInjectedFaultsFailTheStep (go test -tags faultinject): a panic in the scheduler or in a device worker
// fails the step's sequences with an internal error; the engine goes on serving, and frees their memory.
func TestInjectedFaultsFailTheStep(t *testing.T) {
	e := smolEngine(t, true, Options{})
	answer := func(text string) (string, Event) {
		h, err := e.Generate(context.Background(), GenRequest{Text: text, Params: greedyParams(8)})
		if err != nil {
			t.Fatal(err)
		}
		var s string
		var fin Event
		for ev := range h.Events() {
			s += ev.Text
			fin = ev
		}
		return s, fin
	}
	before, fin := answer("What is the capital of France?")
	if fin.Err != nil {
		t.Fatal(fin.Err)
	}
	for _, marker := range []string{"OMNIKV_FAULT_SCHEDULER", "OMNIKV_FAULT_DEVICE"} {
		_, fin := answer("Repeat this: " + marker)
		if KindOf(fin.Err) != KindInternal || !strings.Contains(fin.Err.Error(), "fault injected") {
			t.Fatalf("%s: %v", marker, fin.Err)
		}
		if after, fin := answer("What is the capital of France?"); fin.Err != nil || after != before {
			t.Fatalf("after %s: %q %v, before %q", marker, after, fin.Err, before)
		}
		if n := e.Pool().InUse(); n != 0 {
			t.Fatalf("after %s: %d KV pages in use", marker, n)
		}
	}
}
