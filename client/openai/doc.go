// Package openai is an OpenAI-compatible HTTP gateway in front of a Triton Inference Server that
// serves an omnikv model. It owns the translation in both directions and nothing else:
//
//   - request.go reads and checks a /v1/chat/completions or /v1/completions body (refusing what the
//     backend cannot do with an OpenAI-style error naming the field) and turns it into Triton
//     requests for the omnikv model: the chat messages as the `messages` input (the model renders
//     them with its own chat template), a completion prompt as `text_input` or `input_ids` with
//     apply_chat_template=false, the sampling fields as `sampling_parameters` JSON; messages.go reads
//     the chat messages (text only);
//   - response.go reads the model's responses (`text_output`, `finish_reason`, `prompt_tokens`,
//     `completion_tokens`, `logprobs`, one element per completion when n > 1) into OpenAI choices;
//   - server.go serves the endpoints (non-streaming JSON, server-sent events when stream is true,
//     GET /v1/models), each request on its own gRPC ModelStreamInfer stream through package client.
//     A client that goes away cancels the stream, which Triton passes on to the backend.
//   - errors.go is the one place where failures become HTTP statuses and OpenAI error JSON.
//
// The gateway keeps no state between requests. The command `omnikv-client openai` runs it.
package openai
