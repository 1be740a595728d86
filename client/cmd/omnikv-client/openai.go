package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/client/openai"
)

// runOpenAI serves the OpenAI-compatible gateway (package client/openai) until ctx ends (Ctrl-C),
// then shuts it down, letting requests in flight finish for up to --shutdown-timeout.
func runOpenAI(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("openai", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	listen := fs.String("listen", "127.0.0.1:9000", "HTTP address to serve the OpenAI API on, host:port")
	models := fs.String("model", "omnikv", "Triton model(s) to serve, comma-separated; clients name them in \"model\"")
	apiKey := fs.String("api-key", os.Getenv("OMNIKV_OPENAI_API_KEY"), "require this key as \"Authorization: Bearer <key>\" (default $OMNIKV_OPENAI_API_KEY; empty: no key)")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "on Ctrl-C, wait this long for requests in flight")
	quiet := fs.Bool("quiet", false, "no log line per request")
	if err := parse(fs, args); err != nil {
		return err
	}
	var names []string
	for _, m := range strings.Split(*models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			names = append(names, m)
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(stderr, "openai: --model names no model")
		return errUsage
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	logger := log.New(stderr, "omnikv-client openai: ", log.LstdFlags)
	opt := openai.Options{Models: names, APIKey: *apiKey, Log: logger}
	if *quiet {
		opt.Log = nil
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("openai: listen: %w", err)
	}
	srv := &http.Server{Handler: openai.NewServer(cl, opt), ReadHeaderTimeout: 30 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	logger.Printf("serving the OpenAI API for %s on http://%s/v1 (Triton gRPC %s)", strings.Join(names, ", "), lis.Addr(), c.url)
	select {
	case err := <-served:
		return fmt.Errorf("openai: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("openai: shutdown: %w", err)
	}
	logger.Printf("stopped")
	return nil
}
