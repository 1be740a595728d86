package serve

import (
	"context"
	"strings"
	"testing"
)

func echoRequest(text string, params map[string]Param) *Request {
	return &Request{ID: "e", Inputs: []Tensor{StringTensor(EchoInput, text)}, Params: params}
}

func TestEchoStreamsWords(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"hello big  world", []string{"hello", " big", " world"}},
		{"one", []string{"one"}},
		{"   ", nil},
		{"héllo wörld", []string{"héllo", " wörld"}},
	}
	e := &Echo{}
	for _, tc := range tests {
		req := echoRequest(tc.text, nil)
		if err := e.Check(req); err != nil {
			t.Fatalf("Check(%q): %v", tc.text, err)
		}
		rec := &recorder{}
		if err := Serve(context.Background(), e, req, rec); err != nil {
			t.Fatalf("Serve(%q): %v", tc.text, err)
		}
		var got []string
		for _, r := range rec.responses {
			vals, err := r.Outputs[0].Strings()
			if err != nil || len(vals) != 1 || r.Outputs[0].Name != EchoOutput {
				t.Fatalf("bad output %+v: %v", r.Outputs[0], err)
			}
			got = append(got, string(vals[0]))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || rec.finishes != 1 {
			t.Errorf("echo %q = %q (finishes %d), want %q", tc.text, got, rec.finishes, tc.want)
		}
	}
}

func TestEchoCheck(t *testing.T) {
	tests := []struct {
		name    string
		req     *Request
		wantErr string
	}{
		{"missing input", &Request{}, `input "text_input" is missing`},
		{"two strings", &Request{Inputs: []Tensor{StringTensor(EchoInput, "a", "b")}}, "want 1 string, got 2"},
		{"int input", &Request{Inputs: []Tensor{Int32Tensor(EchoInput, 1)}}, "want BYTES"},
		{"bad delay kind", echoRequest("a", map[string]Param{EchoDelayParam: {Kind: ParamString, Str: "5"}}), "want an INT"},
		{"delay too long", echoRequest("a", map[string]Param{EchoDelayParam: {Kind: ParamInt, Int: 20_000}}), "want an INT"},
		{"ok with delay", echoRequest("a", map[string]Param{EchoDelayParam: {Kind: ParamInt, Int: 1}}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := (&Echo{}).Check(tc.req)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || CodeOf(err) != CodeInvalidArg {
				t.Fatalf("err = %v (code %v), want INVALID_ARG containing %q", err, CodeOf(err), tc.wantErr)
			}
		})
	}
}

func TestEchoPanicTriggers(t *testing.T) {
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Check did not panic on PanicInCheck")
			}
		}()
		_ = (&Echo{}).Check(echoRequest(PanicInCheck, nil))
	}()
	rec := &recorder{}
	err := Serve(context.Background(), &Echo{}, echoRequest(PanicInRun, nil), rec)
	if CodeOf(err) != CodeInternal || len(rec.errs) != 1 {
		t.Errorf("Run panic: err %v, error responses %d; want INTERNAL and 1", err, len(rec.errs))
	}
}

func TestEchoStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := &recorder{}
	err := Serve(ctx, &Echo{}, echoRequest("a b c", map[string]Param{EchoDelayParam: {Kind: ParamInt, Int: 50}}), rec)
	if CodeOf(err) != CodeCancelled || len(rec.responses) != 0 {
		t.Errorf("cancelled ctx: err %v, %d responses; want CANCELLED and none", err, len(rec.responses))
	}
	rec = &recorder{}
	rec.cancelled.Store(true)
	err = Serve(context.Background(), &Echo{}, echoRequest("a b c", nil), rec)
	if CodeOf(err) != CodeCancelled || len(rec.responses) != 0 {
		t.Errorf("client cancelled: err %v, %d responses; want CANCELLED and none", err, len(rec.responses))
	}
}
