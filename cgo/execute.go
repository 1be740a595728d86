package main

/*
#include "triton.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/omnikv-triton/omnikv-triton/backend/serve"
)

// pending is one request of an Execute batch between decoding and hand-off.
type pending struct {
	c   *C.TRITONBACKEND_Request
	req *serve.Request // nil when decoding failed
	out *sender
	err error // decoding or Check error, answered to this request alone
}

// TRITONBACKEND_ModelInstanceExecute: Triton calls this with a batch of requests for an
// instance; never concurrently for one instance. Ownership rule: until every request has a
// response factory and was checked, any failure (error or panic) returns an error and Triton
// keeps and answers all the requests. After that the backend owns them: each gets exactly one
// final response (an error response when its decoding or Check failed, else whatever
// serve.Serve sends from the request's own goroutine), then its statistics and its release.
// Execute itself returns at once; the requests it handed off run on.
//
//export TRITONBACKEND_ModelInstanceExecute
func TRITONBACKEND_ModelInstanceExecute(instance *C.TRITONBACKEND_ModelInstance, requests **C.TRITONBACKEND_Request, count C.uint32_t) (cerr *C.TRITONSERVER_Error) {
	execStart := nowNS()
	var batch []pending
	owned := false
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		err := recovered("TRITONBACKEND_ModelInstanceExecute", p)
		if owned {
			// Requests are ours already: answer those not yet handed off, never return an error.
			for i := range batch {
				if batch[i].out != nil {
					finishWithError(&batch[i], err)
				}
			}
			cerr = nil
			return
		}
		for i := range batch {
			if batch[i].out != nil {
				batch[i].out.close()
			}
		}
		cerr = toTriton(err)
	}()

	mu.Lock()
	st := instances[instance]
	mu.Unlock()
	if st == nil {
		return toTriton(serve.Errorf(serve.CodeInternal, "execute: unknown model instance"))
	}
	if count == 0 {
		return nil
	}
	// Copy the pointers: the array goes back to Triton when Execute returns.
	batch = make([]pending, int(count))
	for i, r := range unsafe.Slice(requests, int(count)) {
		batch[i].c = r
	}
	for i := range batch {
		b := &batch[i]
		out, err := newSender(b.c, "")
		if err != nil {
			for j := 0; j < i; j++ {
				batch[j].out.close()
			}
			return toTriton(fmt.Errorf("execute on %s: %w", st.name, err))
		}
		b.out = out
		b.req, b.err = readRequest(b.c)
		if b.err == nil {
			b.out.reqID = b.req.ID
			b.err = st.model.Check(b.req)
		}
	}

	owned = true
	computeStart := nowNS()
	for i := range batch {
		b := &batch[i]
		if b.err != nil {
			report(instance, b.c, false, execStart, computeStart)
			finishWithError(b, b.err)
			continue
		}
		c, out, req := b.c, b.out, b.req
		b.c, b.out = nil, nil // handed off to the goroutine
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			var err error
			defer func() {
				if p := recover(); p != nil { // serve.Serve recovers Run; this guards the adapter
					err = recovered("request goroutine", p)
				}
				// Held until the final response went out: the sequence batcher issues the next
				// request of a sequence only after this release, so turns never overlap.
				report(instance, c, err == nil, execStart, computeStart)
				release(c, req.ID)
				out.close()
			}()
			err = serve.Serve(st.ctx, st.model, req, out)
			var pe *serve.PanicError
			if errors.As(err, &pe) {
				logError(fmt.Sprintf("request %q on %s: %v\n%s", req.ID, st.name, pe, pe.Stack))
			} else if err != nil {
				logVerbose(fmt.Sprintf("request %q on %s ended: %v", req.ID, st.name, err))
			}
		}()
	}
	end := nowNS()
	if e := C.TRITONBACKEND_ModelInstanceReportBatchStatistics(instance, C.uint64_t(count), C.uint64_t(execStart), C.uint64_t(computeStart), C.uint64_t(end), C.uint64_t(end)); e != nil {
		logWarn(check(e, "TRITONBACKEND_ModelInstanceReportBatchStatistics").Error())
	}
	return nil
}

// finishWithError sends err as b's final response, then releases b's request if still held and
// deletes its factory.
func finishWithError(b *pending, err error) {
	if serr := b.out.SendError(err); serr != nil {
		logError(fmt.Sprintf("sending error %q: %v", err, serr))
	}
	if b.c != nil {
		release(b.c, b.out.reqID)
		b.c = nil
	}
	b.out.close()
	b.out = nil
}

// report records one request's statistics; it must come before the request is released.
func report(instance *C.TRITONBACKEND_ModelInstance, r *C.TRITONBACKEND_Request, ok bool, execStart, computeStart uint64) {
	end := nowNS()
	e := C.TRITONBACKEND_ModelInstanceReportStatistics(instance, r, C.bool(ok), C.uint64_t(execStart), C.uint64_t(computeStart), C.uint64_t(end), C.uint64_t(end))
	if err := check(e, "TRITONBACKEND_ModelInstanceReportStatistics"); err != nil {
		logWarn(err.Error())
	}
}

// release hands a request back to Triton for good.
func release(r *C.TRITONBACKEND_Request, reqID string) {
	if err := check(C.TRITONBACKEND_RequestRelease(r, C.OMNIKV_REQUEST_RELEASE_ALL), "TRITONBACKEND_RequestRelease"); err != nil {
		logError(fmt.Sprintf("request %q: %v", reqID, err))
	}
}
