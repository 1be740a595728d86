package serve

import (
	"fmt"
	"os"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// modelConfigDesc describes the part of Triton's inference.ModelConfig (model_config.proto) that the backend
// reads, with Triton's field names, so that a config.pbtxt can be read the way Triton reads it: protobuf text
// format into the message, then the message as JSON with the proto field names (what
// TRITONBACKEND_ModelConfig hands the backend), then ParseConfig. Fields not described here (inputs, outputs,
// the sequence batcher) are skipped.
var modelConfigDesc = func() protoreflect.MessageDescriptor {
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	i32 := descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum()
	boolean := descriptorpb.FieldDescriptorProto_TYPE_BOOL.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	enum := descriptorpb.FieldDescriptorProto_TYPE_ENUM.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, num int32, label *descriptorpb.FieldDescriptorProto_Label, typ *descriptorpb.FieldDescriptorProto_Type, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(num), Label: label, Type: typ}
		if typeName != "" {
			f.TypeName = proto.String(".inference." + typeName)
		}
		return f
	}
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("omnikv_test_model_config.proto"), Package: proto.String("inference"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("ModelTransactionPolicy"), Field: []*descriptorpb.FieldDescriptorProto{field("decoupled", 1, opt, boolean, "")}},
			{Name: proto.String("ModelParameter"), Field: []*descriptorpb.FieldDescriptorProto{field("string_value", 1, opt, str, "")}},
			{Name: proto.String("ModelInstanceGroup"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, opt, str, ""), field("count", 2, opt, i32, ""), field("gpus", 3, rep, i32, ""),
				field("kind", 4, opt, enum, "ModelInstanceGroup.Kind")},
				EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Kind"), Value: []*descriptorpb.EnumValueDescriptorProto{
					{Name: proto.String("KIND_AUTO"), Number: proto.Int32(0)}, {Name: proto.String("KIND_GPU"), Number: proto.Int32(1)},
					{Name: proto.String("KIND_CPU"), Number: proto.Int32(2)}, {Name: proto.String("KIND_MODEL"), Number: proto.Int32(3)}}}}},
			{Name: proto.String("ModelConfig"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, opt, str, ""), field("platform", 2, opt, str, ""), field("max_batch_size", 4, opt, i32, ""),
				field("instance_group", 7, rep, msg, "ModelInstanceGroup"), field("parameters", 14, rep, msg, "ModelConfig.ParametersEntry"),
				field("backend", 17, opt, str, ""), field("model_transaction_policy", 19, opt, msg, "ModelTransactionPolicy")},
				NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("ParametersEntry"),
					Field:   []*descriptorpb.FieldDescriptorProto{field("key", 1, opt, str, ""), field("value", 2, opt, msg, "ModelParameter")},
					Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)}}}},
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		panic(fmt.Sprintf("model config descriptor: %v", err))
	}
	return fd.Messages().ByName("ModelConfig")
}()

// readPbtxt reads a config.pbtxt as Triton does and returns its JSON form (as the backend receives it) and the
// Config that ParseConfig, the backend's own parser, makes of it.
func readPbtxt(t *testing.T, path string) ([]byte, Config) {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(modelConfigDesc)
	if err := (prototext.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(text, m); err != nil {
		t.Fatalf("%s: not valid protobuf text: %v", path, err)
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	cfg, err := ParseConfig(js)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return js, cfg
}
