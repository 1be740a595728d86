package client

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// tritonWire is testdata/triton_wire.json, written by testdata/triton_wire.py from Triton's own
// generated stubs (tritonclient).
type tritonWire struct {
	Source  string
	Package string
	Service string
	Methods []struct {
		Name, Input, Output string
		CS                  bool `json:"client_streaming"`
		SS                  bool `json:"server_streaming"`
	}
	Messages map[string][]tritonField
	Samples  []struct {
		Message string
		Hex     string
		JSON    map[string]any
	}
}

type tritonField struct {
	Name     string
	Number   int
	Type     int // protoreflect.Kind
	Repeated bool
	Message  string
	Oneof    string
}

// Fields of ours whose declared type differs from Triton's while the wire encoding is the same.
var wireAliases = map[string]bool{
	// bytes here, inference.ModelConfig there: both length-delimited, left undecoded here.
	"inference.ModelConfigResponse.config": true,
}

func loadTritonWire(t *testing.T) *tritonWire {
	t.Helper()
	b, err := os.ReadFile("testdata/triton_wire.json")
	if err != nil {
		t.Fatalf("read golden: %v", err)
	}
	var w tritonWire
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("testdata/triton_wire.json: %v", err)
	}
	return &w
}

// TestWireSchema checks every message and field of client/proto/grpc_service.proto against the
// descriptors of Triton's stubs: same full names, field numbers, kinds, cardinality, message
// types and oneofs; and every method of our service against Triton's.
func TestWireSchema(t *testing.T) {
	w := loadTritonWire(t)
	fd := pb.File_grpc_service_proto
	if string(fd.Package()) != w.Package {
		t.Fatalf("package %q, Triton %q", fd.Package(), w.Package)
	}
	svc := fd.Services().Get(0)
	if string(svc.FullName()) != w.Service {
		t.Fatalf("service %q, Triton %q", svc.FullName(), w.Service)
	}
	methods := svc.Methods()
	for i := 0; i < methods.Len(); i++ {
		m := methods.Get(i)
		found := false
		for _, tm := range w.Methods {
			if tm.Name != string(m.Name()) {
				continue
			}
			found = true
			if tm.Input != string(m.Input().FullName()) || tm.Output != string(m.Output().FullName()) ||
				tm.CS != m.IsStreamingClient() || tm.SS != m.IsStreamingServer() {
				t.Errorf("method %s: ours (%s) -> (%s) streaming %v/%v; Triton's (%s) -> (%s) streaming %v/%v",
					m.Name(), m.Input().FullName(), m.Output().FullName(), m.IsStreamingClient(), m.IsStreamingServer(),
					tm.Input, tm.Output, tm.CS, tm.SS)
			}
		}
		if !found {
			t.Errorf("method %s: not in Triton's service", m.Name())
		}
	}
	checked := 0
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		theirs, ok := w.Messages[string(md.FullName())]
		if !ok {
			t.Errorf("message %s: not among Triton's", md.FullName())
			return
		}
		fields := md.Fields()
		for i := 0; i < fields.Len(); i++ {
			f := fields.Get(i)
			full := string(md.FullName()) + "." + string(f.Name())
			var tf *tritonField
			for j := range theirs {
				if theirs[j].Name == string(f.Name()) {
					tf = &theirs[j]
				}
			}
			if tf == nil {
				t.Errorf("field %s: Triton has no field of that name", full)
				continue
			}
			checked++
			repeated := f.IsList() || f.IsMap() // a map is a repeated entry message on the wire
			if int(f.Number()) != tf.Number || repeated != tf.Repeated {
				t.Errorf("field %s: number %d repeated %v; Triton number %d repeated %v", full, f.Number(), repeated, tf.Number, tf.Repeated)
			}
			if wireAliases[full] {
				continue
			}
			if int(f.Kind()) != tf.Type {
				t.Errorf("field %s: kind %v, Triton %v", full, f.Kind(), protoreflect.Kind(tf.Type))
			}
			if f.Message() != nil && string(f.Message().FullName()) != tf.Message {
				t.Errorf("field %s: message %s, Triton %s", full, f.Message().FullName(), tf.Message)
			}
			oneof := ""
			if o := f.ContainingOneof(); o != nil {
				oneof = string(o.Name())
			}
			if oneof != tf.Oneof {
				t.Errorf("field %s: oneof %q, Triton %q", full, oneof, tf.Oneof)
			}
		}
		nested := md.Messages()
		for i := 0; i < nested.Len(); i++ {
			walk(nested.Get(i))
		}
	}
	msgs := fd.Messages()
	for i := 0; i < msgs.Len(); i++ {
		walk(msgs.Get(i))
	}
	if checked < 100 {
		t.Errorf("only %d fields checked", checked)
	}
	t.Logf("%d methods and %d fields checked against %s", methods.Len(), checked, w.Source)
}

// TestWireSamples decodes messages serialized by Triton's stubs: nothing may be left as an
// unknown field (a number we lack or misdeclare) and the decoded values must equal Triton's JSON
// rendering of them. Together the samples set every field of our .proto.
func TestWireSamples(t *testing.T) {
	w := loadTritonWire(t)
	seen := map[string]bool{}
	for _, s := range w.Samples {
		t.Run(s.Message, func(t *testing.T) {
			mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(s.Message))
			if err != nil {
				t.Fatalf("message %s: %v", s.Message, err)
			}
			raw, err := hex.DecodeString(s.Hex)
			if err != nil {
				t.Fatalf("hex: %v", err)
			}
			m := mt.New().Interface()
			if err := proto.Unmarshal(raw, m); err != nil {
				t.Fatalf("unmarshal Triton's %s: %v", s.Message, err)
			}
			visit(t, m.ProtoReflect(), seen)
			got, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
			if err != nil {
				t.Fatalf("protojson: %v", err)
			}
			var gotJSON map[string]any
			if err := json.Unmarshal(got, &gotJSON); err != nil {
				t.Fatal(err)
			}
			want := s.JSON
			if s.Message == "inference.ModelConfigResponse" {
				// Our config is the undecoded bytes of Triton's ModelConfig: compare presence only.
				if _, ok := gotJSON["config"].(string); !ok {
					t.Errorf("config not carried as bytes: %s", got)
				}
				delete(gotJSON, "config")
				want = map[string]any{}
				for k, v := range s.JSON {
					if k != "config" {
						want[k] = v
					}
				}
			}
			if !reflect.DeepEqual(gotJSON, want) {
				t.Errorf("decoded %s\n got %v\nwant %v", s.Message, gotJSON, want)
			}
			again, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			if back := mt.New().Interface(); proto.Unmarshal(again, back) != nil || !proto.Equal(back, m) {
				t.Errorf("re-encoding %s does not round-trip", s.Message)
			}
		})
	}
	// Every field of every message our .proto declares must have been set by some sample, so that
	// the byte-level check covers the whole subset.
	var missing []string
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if md.IsMapEntry() {
			return
		}
		for i := 0; i < md.Fields().Len(); i++ {
			if f := md.Fields().Get(i); !seen[string(f.FullName())] {
				missing = append(missing, string(f.FullName()))
			}
		}
		for i := 0; i < md.Messages().Len(); i++ {
			walk(md.Messages().Get(i))
		}
	}
	for i := 0; i < pb.File_grpc_service_proto.Messages().Len(); i++ {
		walk(pb.File_grpc_service_proto.Messages().Get(i))
	}
	if len(missing) > 0 {
		t.Errorf("fields no Triton sample sets: %v", missing)
	}
}

// visit records the populated fields of m (recursively) in seen and fails on unknown fields.
func visit(t *testing.T, m protoreflect.Message, seen map[string]bool) {
	t.Helper()
	if u := m.GetUnknown(); len(u) > 0 {
		t.Errorf("%s: %d bytes of fields unknown to our .proto", m.Descriptor().FullName(), len(u))
	}
	m.Range(func(f protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		seen[string(f.FullName())] = true
		switch {
		case f.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if f.MapValue().Message() != nil {
					visit(t, mv.Message(), seen)
				}
				return true
			})
		case f.IsList() && f.Message() != nil:
			for i := 0; i < v.List().Len(); i++ {
				visit(t, v.List().Get(i).Message(), seen)
			}
		case f.Message() != nil:
			visit(t, v.Message(), seen)
		}
		return true
	})
}
