// emu.cpp: runs a kernel's grid on the CPU, one block at a time; each thread of the block is a fiber
// (its own stack) and fibers switch only at barriers (__syncthreads, and the warp exchange of the shuffles). A
// barrier that can never be released (threads of one warp at different barriers) is reported as an error.
#include "cudaemu.h"
#include <stdio.h>
#include <stdlib.h>

// emu_switch saves the callee-saved registers on the current stack, stores the stack pointer in *from and
// continues on the stack to (x86-64 System V; a plain swapcontext would also save the signal mask with a
// system call at every switch).
extern "C" void emu_switch(void **from, void *to);
asm(R"(
	.text
	.globl emu_switch
	.type emu_switch,@function
emu_switch:
	pushq %rbp
	pushq %rbx
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, (%rdi)
	movq %rsi, %rsp
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %rbx
	popq %rbp
	ret
	.size emu_switch, .-emu_switch
)");

emu_dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace {
enum State { READY, WAIT_WARP, WAIT_BLOCK, DONE };
const size_t kStack = 256 << 10;
struct Fiber {
	void *sp = nullptr;
	char *stack = nullptr;
	State state = DONE;
};
Fiber fibers[1024];
void *sched_sp;
int current = -1;
unsigned long long slots[32][32]; // (warp, lane) exchange
void (*body)(void **);
void **body_args;

void fiber_main() {
	const int i = current;
	body(body_args);
	fibers[i].state = DONE;
	emu_switch(&fibers[i].sp, sched_sp); // never resumed
}

void yield(State s) {
	const int me = current;
	fibers[me].state = s;
	emu_switch(&fibers[me].sp, sched_sp);
}
} // namespace

void emu_syncwarp() { yield(WAIT_WARP); }
void emu_syncthreads() { yield(WAIT_BLOCK); }
void *emu_warp_slot(int lane) { return &slots[(current / 32) % 32][lane]; }

static char errbuf[256];

// run_block runs one block; returns NULL or an error.
static const char *run_block(int threads) {
	for (int i = 0; i < threads; i++) {
		Fiber &f = fibers[i];
		if (!f.stack) f.stack = (char *)malloc(kStack);
		// A fresh stack that emu_switch "returns" into fiber_main on, aligned as after a call.
		void **sp = (void **)(((uintptr_t)(f.stack + kStack)) & ~(uintptr_t)15);
		*--sp = nullptr;             // fiber_main's return address (it never returns)
		*--sp = (void *)fiber_main;  // emu_switch's ret
		for (int r = 0; r < 6; r++) *--sp = nullptr; // rbp rbx r12 r13 r14 r15
		f.sp = sp;
		f.state = READY;
	}
	// The order in which fibers run between barriers changes from pass to pass (ascending, descending, then
	// rotated), so that a missing barrier shows as a wrong result whichever thread it should have ordered.
	for (int pass = 0;; pass++) {
		const int rot = (pass / 2) * 37 % threads;
		for (int n = 0; n < threads; n++) {
			const int i = pass % 2 ? threads - 1 - (n + rot) % threads : (n + rot) % threads;
			if (fibers[i].state != READY) continue;
			current = i;
			threadIdx.x = i;
			emu_switch(&sched_sp, fibers[i].sp);
		}
		int live = 0, atBlock = 0;
		bool released = false;
		for (int w = 0; w * 32 < threads; w++) {
			int wl = 0, ww = 0;
			for (int l = w * 32; l < w * 32 + 32 && l < threads; l++) {
				if (fibers[l].state == DONE) continue;
				wl++;
				if (fibers[l].state == WAIT_WARP) ww++;
			}
			if (ww > 0 && ww == wl) {
				for (int l = w * 32; l < w * 32 + 32 && l < threads; l++)
					if (fibers[l].state == WAIT_WARP) fibers[l].state = READY;
				released = true;
			}
		}
		if (released) continue;
		for (int i = 0; i < threads; i++) {
			if (fibers[i].state == DONE) continue;
			live++;
			if (fibers[i].state == WAIT_BLOCK) atBlock++;
		}
		if (live == 0) return nullptr;
		if (atBlock == live) {
			for (int i = 0; i < threads; i++)
				if (fibers[i].state == WAIT_BLOCK) fibers[i].state = READY;
			continue;
		}
		snprintf(errbuf, sizeof errbuf, "deadlock in block (%u, %u, %u): %d threads live, %d at __syncthreads, the rest at a warp barrier with a divergent warp",
		         blockIdx.x, blockIdx.y, blockIdx.z, live, atBlock);
		return errbuf;
	}
}


extern "C" const char *emu_launch(const char *name, int gx, int gy, int gz, int bx, int by, int bz, unsigned long long *vals, int n) {
	const EmuKernel *k = emu_kernels;
	while (k->name && strcmp(k->name, name) != 0) k++;
	if (!k->name) {
		snprintf(errbuf, sizeof errbuf, "emu: no kernel %s", name);
		return errbuf;
	}
	if (by != 1 || bz != 1 || bx > 1024 || bx <= 0) {
		snprintf(errbuf, sizeof errbuf, "emu: block (%d, %d, %d) not supported", bx, by, bz);
		return errbuf;
	}
	void *ptrs[64];
	for (int i = 0; i < n; i++) ptrs[i] = &vals[i];
	body = k->call;
	body_args = ptrs;
	gridDim = {(unsigned)gx, (unsigned)gy, (unsigned)gz};
	blockDim = {(unsigned)bx, 1, 1};
	threadIdx = {0, 0, 0};
	for (int z = 0; z < gz; z++)
		for (int y = 0; y < gy; y++)
			for (int x = 0; x < gx; x++) {
				blockIdx = {(unsigned)x, (unsigned)y, (unsigned)z};
				if (const char *e = run_block(bx)) return e;
			}
	return nullptr;
}

extern "C" void *emu_alloc(size_t n) {
	void *p = nullptr;
	if (posix_memalign(&p, 256, n < 1 ? 1 : n) != 0) return nullptr;
	memset(p, 0xcd, n); // not zeroed, as cuMemAlloc's memory is not
	return p;
}
extern "C" void emu_free(unsigned long long p) { free((void *)p); }
extern "C" void emu_copy(unsigned long long dst, unsigned long long src, size_t n) { memmove((void *)dst, (const void *)src, n); }
extern "C" void emu_set(unsigned long long dst, int v, size_t n) { memset((void *)dst, v, n); }
