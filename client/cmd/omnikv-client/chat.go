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
// successful turn with sequence_start=true. Blank lines are skipped. The answer is streamed to
// stdout, followed by a blank line. Every turn asks for exclude_input_in_output=true: the user has
// already seen their line. A failed turn is reported and the chat goes on.
//
// Ending the sequence (--end): Triton ends a sequence only on a request flagged sequence_end.
//   - last: the last line's turn carries sequence_end. chat reads one line ahead to know, so use
//     it for piped input only (the default when stdin is not a terminal).
//   - turn: on EOF (Ctrl-D) chat sends one closing request flagged sequence_end: text_input " "
//     (one space: the omnikv backend rejects an empty text_input) and max_tokens=1, its output
//     discarded (the default on a terminal, where the last turn is not known in advance).
//   - none: leave the sequence open; the server's idle timeout frees it.
//
// A failure to end only warns: the server's idle timeout frees the session anyway.
func runChat(ctx context.Context, args []string, stdin io.Reader, interactive bool, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	var s sampling
	s.register(fs)
	model := fs.String("model", "omnikv_chat", "model name (a sequence-batched model)")
	seqID := fs.Int64("sequence-id", 0, "sequence (conversation) id; 0 picks a random one")
	endMode := fs.String("end", "auto", "how the sequence ends: last (flag the last line's turn), turn (a closing request on EOF), none, or auto (last for piped stdin, turn on a terminal)")
	stats := fs.Bool("stats", false, "print statistics for every turn on stderr")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch *endMode {
	case "auto":
		*endMode = "last"
		if interactive {
			*endMode = "turn"
		}
	case "last", "turn", "none":
	default:
		fmt.Fprintf(stderr, "chat: --end must be auto, last, turn or none, not %q\n", *endMode)
		return errUsage
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

	// Lines come from a goroutine so that an interrupt also ends a wait for input.
	in := bufio.NewScanner(stdin)
	in.Buffer(make([]byte, 64*1024), 16<<20)
	lines := make(chan string)
	go func() {
		defer close(lines)
		for in.Scan() {
			select {
			case lines <- strings.TrimRight(in.Text(), "\r"):
			case <-ctx.Done():
				return
			}
		}
	}()
	interrupted := false
	// readTurn returns the next non-blank line of stdin; false at EOF or on an interrupt.
	readTurn := func() (string, bool) {
		for {
			if interactive {
				fmt.Fprint(stderr, "> ")
			}
			select {
			case line, ok := <-lines:
				if !ok {
					return "", false
				}
				if strings.TrimSpace(line) != "" {
					return line, true
				}
			case <-ctx.Done():
				interrupted = true
				return "", false
			}
		}
	}
	started, ended, failed := false, false, 0
	line, ok := readTurn()
	for ok {
		var next string
		last := false
		if *endMode == "last" {
			next, ok = readTurn()
			last = !ok
		}
		req := client.GenerateRequest{Model: *model, Prompt: line, Stream: true, MaxTokens: s.maxTokens, Sampling: s.params(),
			ExcludeInput: client.Ptr(true), Sequence: &client.Sequence{ID: id, Start: !started, End: last}}
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
			// The next turn starts the sequence again if none has started it yet.
			failed++
			fmt.Fprintf(stderr, "omnikv-client: turn failed: %v\n", err)
		} else {
			started, ended = true, last
		}
		if *endMode == "last" {
			line = next
		} else {
			line, ok = readTurn()
		}
	}
	if interrupted {
		return fmt.Errorf("waiting for input: %w", ctx.Err())
	}
	if err := in.Err(); err != nil { // the reader has finished: lines is closed
		return fmt.Errorf("reading stdin: %w", err)
	}
	if started && !ended && *endMode != "none" {
		end := client.GenerateRequest{Model: *model, Prompt: " ", MaxTokens: 1, ExcludeInput: client.Ptr(true),
			Sequence: &client.Sequence{ID: id, End: true}}
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
