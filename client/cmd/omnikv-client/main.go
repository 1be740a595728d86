// Command omnikv-client talks to a Triton Inference Server serving the omnikv models over gRPC
// (KServe v2, port 8001 by default):
//
//	omnikv-client generate --url localhost:8001 --model omnikv --prompt "..." [--stream] [--max-tokens N]
//	                       [--temperature T] [--top-p P] [--top-k K] [--seed S] [--stop STR]...
//	omnikv-client chat     --url localhost:8001 --model omnikv_chat [--max-tokens N] [--end auto|last|turn|none] [--stats] ...
//	omnikv-client health   --url localhost:8001 [--model omnikv]
//	omnikv-client load|unload --url localhost:8001 --model omnikv
//	omnikv-client openai   --url localhost:8001 --model omnikv --listen 127.0.0.1:9000
//
// generate prints the text as it arrives and then, on stderr, the token count, seconds, tokens
// per second and time to first token. chat reads one user turn per line of stdin and keeps the
// conversation in one server-side sequence (see chat.go for how it ends).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/omnikv-triton/omnikv-triton/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, isTerminal(os.Stdin), os.Stdout, os.Stderr))
}

// isTerminal reports whether f is a character device (an interactive terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

const usage = `usage: omnikv-client <command> [flags]

commands:
  generate   one generation; prints the text, then statistics on stderr
  chat       a conversation read line by line from stdin, kept in one server sequence
  health     server liveness and readiness, and a model's readiness with --model
  load       load or reload --model (server started with --model-control-mode=explicit)
  unload     unload --model
  openai     an OpenAI-compatible HTTP gateway (/v1/chat/completions, /v1/completions, /v1/models)

run "omnikv-client <command> -h" for the flags of a command.
`

// run executes one command and returns the exit status: 0 success, 1 failure, 2 bad usage,
// 130 interrupted.
func run(ctx context.Context, args []string, stdin io.Reader, interactive bool, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "generate":
		err = runGenerate(ctx, args[1:], stdout, stderr)
	case "chat":
		err = runChat(ctx, args[1:], stdin, interactive, stdout, stderr)
	case "health":
		err = runHealth(ctx, args[1:], stdout, stderr)
	case "load", "unload":
		err = runRepository(ctx, args[0], args[1:], stdout, stderr)
	case "openai":
		err = runOpenAI(ctx, args[1:], stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "omnikv-client: unknown command %q\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "omnikv-client: interrupted: %v\n", err)
		return 130
	default:
		fmt.Fprintf(stderr, "omnikv-client: %v\n", err)
		return 1
	}
}

// errUsage marks a flag error already reported by the flag package.
var errUsage = errors.New("usage error")

// common holds the connection flags every command has.
type common struct {
	url         string
	dialTimeout time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", "localhost:8001", "gRPC endpoint of the server, host:port")
	fs.DurationVar(&c.dialTimeout, "dial-timeout", 10*time.Second, "give up connecting after this long")
}

func (c *common) dial(ctx context.Context) (*client.Client, error) {
	dctx, cancel := context.WithTimeout(ctx, c.dialTimeout)
	defer cancel()
	return client.Dial(dctx, c.url)
}

// parse parses args into fs, mapping its errors for run.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return errUsage
	}
	return nil
}

// sampling holds the sampling flags of generate and chat; only the flags given are sent.
type sampling struct {
	maxTokens int
	temp      optFloat
	topP      optFloat
	minP      optFloat
	repPen    optFloat
	topK      optInt
	seed      optUint
	stop      stringList
}

func (s *sampling) register(fs *flag.FlagSet) {
	fs.IntVar(&s.maxTokens, "max-tokens", 0, "new tokens at most (0: the server's default)")
	fs.Var(&s.temp, "temperature", "sampling temperature, 0 = greedy (default: the server's)")
	fs.Var(&s.topP, "top-p", "nucleus sampling threshold in (0, 1]")
	fs.Var(&s.minP, "min-p", "drop tokens below min-p times the top probability")
	fs.Var(&s.repPen, "repetition-penalty", "penalty for tokens already seen (1 = off)")
	fs.Var(&s.topK, "top-k", "keep the k most likely tokens (0 = off)")
	fs.Var(&s.seed, "seed", "random seed: same seed, same output")
	fs.Var(&s.stop, "stop", "stop string (repeat the flag for more)")
}

// params returns the sampling_parameters to send, nil if no sampling flag was given.
func (s *sampling) params() *client.Sampling {
	p := client.Sampling{Temperature: s.temp.p, TopP: s.topP.p, MinP: s.minP.p, RepetitionPenalty: s.repPen.p,
		TopK: s.topK.p, Seed: s.seed.p, Stop: s.stop}
	if p.Temperature == nil && p.TopP == nil && p.MinP == nil && p.RepetitionPenalty == nil && p.TopK == nil && p.Seed == nil && len(p.Stop) == 0 {
		return nil
	}
	return &p
}

// optFloat, optInt and optUint are flags that remember whether they were given.
type optFloat struct{ p *float64 }

func (o *optFloat) String() string {
	if o.p == nil {
		return ""
	}
	return strconv.FormatFloat(*o.p, 'g', -1, 64)
}

func (o *optFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return err
	}
	o.p = &v
	return nil
}

type optInt struct{ p *int }

func (o *optInt) String() string {
	if o.p == nil {
		return ""
	}
	return strconv.Itoa(*o.p)
}

func (o *optInt) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	o.p = &v
	return nil
}

type optUint struct{ p *uint64 }

func (o *optUint) String() string {
	if o.p == nil {
		return ""
	}
	return strconv.FormatUint(*o.p, 10)
}

func (o *optUint) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return err
	}
	o.p = &v
	return nil
}

type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = append(*l, s)
	return nil
}

func runHealth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	model := fs.String("model", "", "also check this model's readiness")
	if err := parse(fs, args); err != nil {
		return err
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	live, err := cl.Live(ctx)
	if err != nil {
		return err
	}
	ready, err := cl.Ready(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "live=%v ready=%v", live, ready)
	ok := live && ready
	if *model != "" {
		mr, err := cl.ModelReady(ctx, *model, "")
		if err != nil {
			fmt.Fprintln(stdout)
			return err
		}
		fmt.Fprintf(stdout, " model %s ready=%v", *model, mr)
		ok = ok && mr
	}
	fmt.Fprintln(stdout)
	if !ok {
		return errors.New("server or model not ready")
	}
	return nil
}

func runRepository(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	model := fs.String("model", "", "the model (required)")
	config := ""
	if cmd == "load" {
		fs.StringVar(&config, "config", "", "JSON model config replacing config.pbtxt (optional)")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *model == "" {
		fmt.Fprintf(stderr, "%s: --model is required\n", cmd)
		return errUsage
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	if cmd == "load" {
		err = cl.Load(ctx, *model, config)
	} else {
		err = cl.Unload(ctx, *model)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%sed %s\n", cmd, *model)
	return nil
}
