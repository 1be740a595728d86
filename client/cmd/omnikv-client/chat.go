package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/omnikv-triton/omnikv-triton/client"
)

// runChat holds a conversation with a sequence-batched model (omnikv_chat): every line of stdin is
// one user turn, sent with the same sequence id (random unless --sequence-id), the first
// successful turn with sequence_start=true. Empty lines are skipped. The answer is streamed to
// stdout, followed by a blank line.
//
// Ending the sequence: Triton ends a sequence only on a request flagged sequence_end, and reading
// interactively we cannot know a turn is the last before the user closes stdin. So on EOF (Ctrl-D,
// or the end of piped input) chat sends one more request on the sequence: text_input "" with
// sequence_end=true and max_tokens=1, and discards its output. The server is expected to accept
// that empty closing turn (and may answer it with nothing). If it fails, chat only warns: the
// server's idle timeout frees the session anyway. --no-end leaves the sequence open.
func runChat(ctx context.Context, args []string, stdin io.Reader, interactive bool, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var s sampling
	s.register(fs)
	model := fs.String("model", "omnikv_chat", "model name (a sequence-batched model)")
	seqID := fs.Int64("sequence-id", 0, "sequence (conversation) id; 0 picks a random one")
	noEnd := fs.Bool("no-end", false, "on EOF, leave the sequence open instead of sending the closing turn")
	stats := fs.Bool("stats", false, "print statistics for every turn on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *seqID < 0 {
		fmt.Fprintln(stderr, "chat: --sequence-id must be positive")
		return errUsage
	}
	id := *seqID
	if id == 0 {
		var err error
		if id, err = randomID(); err != nil {
			return err
		}
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	if interactive {
		fmt.Fprintf(stderr, "chat with %s (sequence %d); Ctrl-D ends it\n", *model, id)
	}

	started, failed := false, 0
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64*1024), 16<<20)
	for {
		if interactive {
			fmt.Fprint(stderr, "> ")
		}
		if !in.Scan() {
			break
		}
		line := strings.TrimRight(in.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		req := client.GenerateRequest{Model: *model, Prompt: line, Stream: true, MaxTokens: s.maxTokens, Sampling: s.params(),
			Sequence: &client.Sequence{ID: id, Start: !started}}
		pieces := 0
		res, err := cl.Generate(ctx, req, func(d client.Delta) error {
			if d.Text != "" {
				pieces++
			}
			_, err := io.WriteString(stdout, d.Text)
			return err
		})
		fmt.Fprint(stdout, "\n\n")
		if *stats {
			writeStats(stderr, res, pieces)
		}
		if ctx.Err() != nil {
			return err
		}
		if err != nil {
			// A failed turn does not end the chat; the next one starts the sequence if none did.
			failed++
			fmt.Fprintf(stderr, "omnikv-client: turn failed: %v\n", err)
			continue
		}
		started = true
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("reading stdin: %w", err)
	}
	if started && !*noEnd {
		end := client.GenerateRequest{Model: *model, Prompt: "", MaxTokens: 1, Sequence: &client.Sequence{ID: id, End: true}}
		if _, err := cl.Generate(ctx, end, nil); err != nil {
			fmt.Fprintf(stderr, "omnikv-client: warning: closing sequence %d: %v\n", id, err)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d turn(s) failed", failed)
	}
	return nil
}

// randomID returns a random positive int64 (Triton correlation ids are unsigned; 0 means none).
func randomID() (int64, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("random sequence id: %w", err)
	}
	return int64(binary.LittleEndian.Uint64(b[:])>>1) | 1, nil
}
