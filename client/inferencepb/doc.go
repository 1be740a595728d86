// Package inferencepb holds the Go stubs generated from client/proto/grpc_service.proto: the
// messages and the GRPCInferenceService client and server of the KServe v2 / Triton gRPC protocol
// (package "inference"), restricted to what omnikv-triton uses. Nothing here is written by hand
// except this file; regenerate after editing the .proto with
//
//	go generate ./client/inferencepb
//
// which needs protoc (Debian: protobuf-compiler) and, on PATH, protoc-gen-go v1.36.12 and
// protoc-gen-go-grpc v1.6.x (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12;
// go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2).
package inferencepb

//go:generate protoc -I ../proto --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative ../proto/grpc_service.proto
