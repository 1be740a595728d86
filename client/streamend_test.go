package client

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/omnikv-triton/omnikv-triton/client/clienttest"
	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// After the final response StreamInfer lets the server end the stream instead of resetting it: the server
// sees the client's half-close and finishes its own work (as tritonserver releases a stream's state) with the
// stream's context still alive. A client that cancels at once would leave the server a cancelled context.
func TestStreamInferLetsTheServerEndTheStream(t *testing.T) {
	type outcome struct {
		eof       bool // the server saw the client's half-close
		cancelled bool // the stream's context was cancelled before the server ended it
	}
	got := make(chan outcome, 1)
	srv := &clienttest.Server{Stream: func(stream pb.GRPCInferenceService_ModelStreamInferServer) error {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		final := &pb.ModelInferResponse{Parameters: map[string]*pb.InferParameter{
			"triton_final_response": {ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: true}}}}
		if err := stream.Send(&pb.ModelStreamInferResponse{InferResponse: final}); err != nil {
			return err
		}
		_, err := stream.Recv()
		time.Sleep(50 * time.Millisecond) // the server's own clean-up before it ends the stream
		got <- outcome{eof: errors.Is(err, io.EOF), cancelled: stream.Context().Err() != nil}
		return nil
	}}
	c := dial(t, srv, "m")
	n := 0
	start := time.Now()
	err := c.StreamInfer(testCtx(t), &pb.ModelInferRequest{ModelName: "m"}, func(*pb.ModelInferResponse) error { n++; return nil })
	if err != nil || n != 1 {
		t.Fatalf("StreamInfer: %v after %d responses, want nil after 1", err, n)
	}
	if o := <-got; !o.eof || o.cancelled {
		t.Errorf("server side: half-close seen %v, context cancelled before the server ended the stream %v; want true, false", o.eof, o.cancelled)
	}
	if d := time.Since(start); d >= streamEndWait {
		t.Errorf("StreamInfer took %v: it waited out streamEndWait although the server ended the stream", d)
	}
}
