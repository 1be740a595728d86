// Command omnikv-configdoc writes docs/configuration.md, the reference of the omnikv backend's config.pbtxt
// parameters, from the table the backend parses them with (serve.GenParams, backend/serve/params.go). It owns
// nothing else: the text comes from serve.ConfigReference.
//
//	go run ./backend/cmd/omnikv-configdoc            # from the repository root: (re)writes docs/configuration.md
//	go run ./backend/cmd/omnikv-configdoc -check     # exits 1 when the committed file differs
//	go run ./backend/cmd/omnikv-configdoc -o -       # prints it
//	go generate ./backend/serve                      # the same as the first
package main
