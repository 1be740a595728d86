package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/omnikv-triton/omnikv-triton/client/inferencepb"
)

// maxRecvBytes caps one received message; gRPC's default (4 MiB) is too small for long outputs.
const maxRecvBytes = 1 << 30

// Client talks to one server over one gRPC connection. It is safe for concurrent use: each
// Generate opens its own stream.
type Client struct {
	conn *grpc.ClientConn
	rpc  pb.GRPCInferenceServiceClient
}

// Dial connects to the gRPC endpoint at addr ("host:port"; a leading "grpc://" or "http://" is
// dropped) without TLS, and waits until the connection is ready or ctx is done: give ctx a
// deadline to bound the wait. opts are appended to the defaults (insecure transport, 1 GiB
// receive limit), so a test can pass grpc.WithContextDialer.
func Dial(ctx context.Context, addr string, opts ...grpc.DialOption) (*Client, error) {
	target := strings.TrimPrefix(strings.TrimPrefix(addr, "grpc://"), "http://")
	if target == "" {
		return nil, errors.New("client: dial: empty address")
	}
	all := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecvBytes)),
	}, opts...)
	conn, err := grpc.NewClient(target, all...)
	if err != nil {
		return nil, fmt.Errorf("client: dial %s: %w", addr, err)
	}
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			break
		}
		if !conn.WaitForStateChange(ctx, s) {
			_ = conn.Close()
			return nil, fmt.Errorf("client: dial %s: connection not ready (last state %v): %w", addr, s, ctx.Err())
		}
	}
	return New(conn), nil
}

// New wraps an existing connection (for custom dial options or a shared connection); Close
// closes it.
func New(conn *grpc.ClientConn) *Client {
	return &Client{conn: conn, rpc: pb.NewGRPCInferenceServiceClient(conn)}
}

// RPC returns the generated stub, for the calls this package does not wrap.
func (c *Client) RPC() pb.GRPCInferenceServiceClient { return c.rpc }

// Close closes the connection; streams still open fail.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("client: close: %w", err)
	}
	return nil
}

// Live reports whether the server is live.
func (c *Client) Live(ctx context.Context) (bool, error) {
	r, err := c.rpc.ServerLive(ctx, &pb.ServerLiveRequest{})
	if err != nil {
		return false, fmt.Errorf("client: ServerLive: %w", err)
	}
	return r.GetLive(), nil
}

// Ready reports whether the server is ready.
func (c *Client) Ready(ctx context.Context) (bool, error) {
	r, err := c.rpc.ServerReady(ctx, &pb.ServerReadyRequest{})
	if err != nil {
		return false, fmt.Errorf("client: ServerReady: %w", err)
	}
	return r.GetReady(), nil
}

// ModelReady reports whether version of model is ready ("" lets the server choose the version).
func (c *Client) ModelReady(ctx context.Context, model, version string) (bool, error) {
	r, err := c.rpc.ModelReady(ctx, &pb.ModelReadyRequest{Name: model, Version: version})
	if err != nil {
		return false, fmt.Errorf("client: ModelReady %q: %w", model, err)
	}
	return r.GetReady(), nil
}

// ModelMetadata returns the model's inputs, outputs and versions.
func (c *Client) ModelMetadata(ctx context.Context, model, version string) (*pb.ModelMetadataResponse, error) {
	r, err := c.rpc.ModelMetadata(ctx, &pb.ModelMetadataRequest{Name: model, Version: version})
	if err != nil {
		return nil, fmt.Errorf("client: ModelMetadata %q: %w", model, err)
	}
	return r, nil
}

// Load loads or reloads model from the server's repository (the server must run with
// --model-control-mode=explicit). configJSON, when not empty, replaces the model's config.pbtxt
// (the "config" load parameter, a JSON model config).
func (c *Client) Load(ctx context.Context, model, configJSON string) error {
	req := &pb.RepositoryModelLoadRequest{ModelName: model}
	if configJSON != "" {
		req.Parameters = map[string]*pb.ModelRepositoryParameter{
			"config": {ParameterChoice: &pb.ModelRepositoryParameter_StringParam{StringParam: configJSON}},
		}
	}
	if _, err := c.rpc.RepositoryModelLoad(ctx, req); err != nil {
		return fmt.Errorf("client: load model %q: %w", model, err)
	}
	return nil
}

// Unload unloads model.
func (c *Client) Unload(ctx context.Context, model string) error {
	if _, err := c.rpc.RepositoryModelUnload(ctx, &pb.RepositoryModelUnloadRequest{ModelName: model}); err != nil {
		return fmt.Errorf("client: unload model %q: %w", model, err)
	}
	return nil
}

// ServerError is an error the server put in a streamed response's error_message: the request
// failed (bad input, model error), not the transport.
type ServerError struct {
	Model   string
	ID      string // the request id, "" if none was given
	Message string
}

func (e *ServerError) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("model %q request %q: server error: %s", e.Model, e.ID, e.Message)
	}
	return fmt.Sprintf("model %q: server error: %s", e.Model, e.Message)
}

// IsFinal reports whether resp carries the response parameter triton_final_response=true, which
// Triton sets on the last response of a request to a decoupled model.
func IsFinal(resp *pb.ModelInferResponse) bool {
	p, ok := resp.GetParameters()["triton_final_response"]
	return ok && p.GetBoolParam()
}

// StreamInfer sends req alone on a new ModelStreamInfer stream and calls onResponse for each
// response, in order, until the one flagged final (IsFinal), which is also passed; responses
// after it are not read. It adds the request parameter triton_enable_empty_final_response=true to
// req so that a model ending with a bare FINAL flag still produces that last (output-less)
// response. A server that closes the stream cleanly after at least one response also ends it
// without error: a model that is not decoupled answers once and may not flag it.
//
// It returns a *ServerError for a response with an error_message, the error of onResponse, an
// error when the stream ends with no response at all, or ctx's error when ctx ends first.
// Whatever the outcome, the stream is cancelled before StreamInfer returns, which tells the
// server to stop work on req.
func (c *Client) StreamInfer(ctx context.Context, req *pb.ModelInferRequest, onResponse func(*pb.ModelInferResponse) error) error {
	if req.Parameters == nil {
		req.Parameters = map[string]*pb.InferParameter{}
	}
	req.Parameters["triton_enable_empty_final_response"] = &pb.InferParameter{
		ParameterChoice: &pb.InferParameter_BoolParam{BoolParam: true},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("model %q: %s: %w", req.GetModelName(), what, err)
	}
	stream, err := c.rpc.ModelStreamInfer(ctx)
	if err != nil {
		return fail("open stream", err)
	}
	if err := stream.Send(req); err != nil {
		if errors.Is(err, io.EOF) { // the server ended the stream: its status comes with the next receive
			if _, rerr := stream.Recv(); rerr != nil {
				err = rerr
			}
		}
		return fail("send request", err)
	}
	if err := stream.CloseSend(); err != nil {
		return fail("close send", err)
	}
	for n := 0; ; n++ {
		r, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if n > 0 {
					return nil
				}
				return fail("stream", errors.New("server closed the stream without a response"))
			}
			return fail(fmt.Sprintf("receive response %d", n), err)
		}
		if msg := r.GetErrorMessage(); msg != "" {
			return &ServerError{Model: req.GetModelName(), ID: req.GetId(), Message: msg}
		}
		resp := r.GetInferResponse()
		if resp == nil {
			resp = &pb.ModelInferResponse{}
		}
		if err := onResponse(resp); err != nil {
			return err
		}
		if IsFinal(resp) {
			awaitEnd(stream)
			return nil
		}
	}
}

// streamEndWait bounds how long StreamInfer waits, after the final response, for the server to end the
// stream.
const streamEndWait = 2 * time.Second

// awaitEnd lets the server end a stream whose last response has arrived (the client has already closed its
// side) before StreamInfer cancels it. Cancelling at once resets the stream under the server, and
// tritonserver 2.51 then sometimes keeps the model alive at shutdown until its exit timeout (30 s): it holds
// the reset stream's state with its response until the gRPC service stops, after the models should have
// unloaded. A server that does not end the stream within streamEndWait is cancelled anyway.
func awaitEnd(stream grpc.BidiStreamingClient[pb.ModelInferRequest, pb.ModelStreamInferResponse]) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(streamEndWait):
	}
}
