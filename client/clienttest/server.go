package clienttest

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// StreamHandler serves one ModelStreamInfer call.
type StreamHandler func(stream pb.GRPCInferenceService_ModelStreamInferServer) error

// Server is a GRPCInferenceService for tests. Set the fields, then call Start.
type Server struct {
	pb.UnimplementedGRPCInferenceServiceServer

	// Stream serves ModelStreamInfer; nil answers Unimplemented.
	Stream StreamHandler
	// NotLive and NotReady flip ServerLive and ServerReady to false.
	NotLive, NotReady bool

	mu     sync.Mutex
	models map[string]bool // model name -> ready
	calls  []string        // repository calls, e.g. "load omnikv config={...}"
}

// Start serves s on 127.0.0.1 at a free port until the test ends and returns the address.
// models are reported ready by ModelReady until unloaded.
func (s *Server) Start(t testing.TB, models ...string) string {
	t.Helper()
	s.mu.Lock()
	s.models = map[string]bool{}
	for _, m := range models {
		s.models[m] = true
	}
	s.mu.Unlock()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("clienttest: listen: %v", err)
	}
	srv := grpc.NewServer()
	pb.RegisterGRPCInferenceServiceServer(srv, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

// Calls returns the repository calls received so far, in order.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// ServerLive implements the RPC.
func (s *Server) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: !s.NotLive}, nil
}

// ServerReady implements the RPC.
func (s *Server) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: !s.NotReady}, nil
}

// ModelReady implements the RPC: an unknown model is NotFound, as Triton answers.
func (s *Server) ModelReady(_ context.Context, r *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ready, ok := s.models[r.GetName()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "model %q is not in the repository", r.GetName())
	}
	return &pb.ModelReadyResponse{Ready: ready}, nil
}

// RepositoryModelLoad implements the RPC: the model becomes ready.
func (s *Server) RepositoryModelLoad(_ context.Context, r *pb.RepositoryModelLoadRequest) (*pb.RepositoryModelLoadResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	call := "load " + r.GetModelName()
	if p, ok := r.GetParameters()["config"]; ok {
		call += " config=" + p.GetStringParam()
	}
	s.calls = append(s.calls, call)
	s.models[r.GetModelName()] = true
	return &pb.RepositoryModelLoadResponse{}, nil
}

// RepositoryModelUnload implements the RPC: an unknown model is an error.
func (s *Server) RepositoryModelUnload(_ context.Context, r *pb.RepositoryModelUnloadRequest) (*pb.RepositoryModelUnloadResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.models[r.GetModelName()]; !ok {
		return nil, status.Errorf(codes.InvalidArgument, "failed to unload %q, no version is available", r.GetModelName())
	}
	s.calls = append(s.calls, "unload "+r.GetModelName())
	s.models[r.GetModelName()] = false
	return &pb.RepositoryModelUnloadResponse{}, nil
}

// ModelStreamInfer implements the RPC by calling s.Stream.
func (s *Server) ModelStreamInfer(stream pb.GRPCInferenceService_ModelStreamInferServer) error {
	if s.Stream == nil {
		return status.Error(codes.Unimplemented, "clienttest: no stream handler")
	}
	if err := s.Stream(stream); err != nil {
		return fmt.Errorf("clienttest: stream handler: %w", err)
	}
	return nil
}
