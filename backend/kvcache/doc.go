// Package kvcache owns the keys and values of every sequence: fixed-size pages allocated from a shared pool,
// a page table per sequence and per layer, and growth by adding pages (never by copying the cache). The pool
// counts pages so that the engine can admit sequences only while memory lasts.
package kvcache
