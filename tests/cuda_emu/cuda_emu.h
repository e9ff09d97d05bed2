// A test-only CUDA emulator: g++ compiles gpunn's .cu files with this header forced in
// (-include), and every GPU thread runs as a fiber (ucontext) on one OS thread.
//
// Blocks run one after another; within a block the scheduler resumes runnable fibers in
// a chosen order (in order, reversed, or a seeded random order each round). A fiber runs
// until it reaches __syncthreads (block barrier), a warp shuffle (warp barrier) or its end,
// so missing barriers show up as wrong results under some schedule, and a barrier that
// not every live thread reaches is reported as a deadlock instead of hanging.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <ucontext.h>
#include <vector>

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static  // one block runs at a time, so a static is that block's memory

using std::exp; using std::log; using std::tanh; using std::sqrt; using std::fmax; using std::fmin;

struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

inline float __int_as_float(int bits) { float f; std::memcpy(&f, &bits, 4); return f; }
inline float __int_as_float(unsigned bits) { float f; std::memcpy(&f, &bits, 4); return f; }
inline double __longlong_as_double(unsigned long long bits) { double d; std::memcpy(&d, &bits, 8); return d; }
template <typename T> inline T atomicAdd(T* address, T value) { T old = *address; *address += value; return old; }

namespace emu {

enum State { READY, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };
enum Schedule { IN_ORDER = 0, REVERSED = 1, RANDOM = 2 };

struct Fiber {
    ucontext_t context;
    State state = READY;
};

struct Block {
    std::vector<Fiber> fibers;
    std::vector<double> shuffle_slots;  // one per thread, for warp shuffles
    ucontext_t scheduler;
    int current = -1;
    std::function<void()> body;
};

inline Block* active = nullptr;

inline void yield_as(State state) {
    Fiber& f = active->fibers[active->current];
    f.state = state;
    swapcontext(&f.context, &active->scheduler);
}

inline void fiber_entry() {
    active->body();
    active->fibers[active->current].state = DONE;
    setcontext(&active->scheduler);
}

struct Deadlock : std::runtime_error { using std::runtime_error::runtime_error; };

// Release barriers that every live thread of their group has reached; report the ones
// that can never complete because some thread of the group already finished.
inline bool release_barriers(Block& b) {
    const int n = (int)b.fibers.size();
    bool released = false;
    int done = 0, at_block = 0;
    for (auto& f : b.fibers) { done += f.state == DONE; at_block += f.state == AT_BLOCK_BARRIER; }
    if (at_block > 0 && at_block + done == n) {
        if (done > 0) throw Deadlock("__syncthreads reached by " + std::to_string(at_block) + " of " +
                                     std::to_string(n) + " threads; the others exited (divergent barrier)");
        for (auto& f : b.fibers) f.state = READY;
        return true;
    }
    for (int w = 0; w < n; w += 32) {
        int end = std::min(n, w + 32), waiting = 0, finished = 0;
        for (int t = w; t < end; ++t) { waiting += b.fibers[t].state == AT_WARP_BARRIER; finished += b.fibers[t].state == DONE; }
        if (waiting > 0 && waiting + finished == end - w) {
            if (finished > 0) throw Deadlock("warp shuffle with exited lanes in warp " + std::to_string(w / 32));
            for (int t = w; t < end; ++t) b.fibers[t].state = READY;
            released = true;
        }
    }
    return released;
}

inline void run_block(Block& b, Schedule schedule, std::mt19937& rng) {
    const int n = (int)b.fibers.size();
    std::vector<int> order(n);
    while (true) {
        for (int i = 0; i < n; ++i) order[i] = schedule == REVERSED ? n - 1 - i : i;
        if (schedule == RANDOM) std::shuffle(order.begin(), order.end(), rng);
        bool ran = false;
        for (int t : order) {
            if (b.fibers[t].state != READY) continue;
            b.current = t;
            threadIdx.x = (unsigned)t;
            swapcontext(&b.scheduler, &b.fibers[t].context);
            ran = true;
        }
        bool all_done = true;
        for (auto& f : b.fibers) all_done &= f.state == DONE;
        if (all_done) return;
        if (!release_barriers(b) && !ran) throw Deadlock("no thread can make progress");
    }
}

// Runs kernel(args...) on a (grid, block) launch. Returns "" or an error message.
inline std::string launch(unsigned grid, unsigned block, int schedule, unsigned seed,
                          std::function<void()> kernel, size_t stack_bytes = 64 * 1024) {
    std::mt19937 rng(seed);
    gridDim.x = grid; blockDim.x = block;
    std::vector<std::unique_ptr<char[]>> stacks(block);  // reused by every block
    for (auto& s : stacks) s.reset(new char[stack_bytes]);
    try {
        for (unsigned g = 0; g < grid; ++g) {
            Block b;
            b.body = kernel;
            b.fibers.resize(block);
            b.shuffle_slots.assign(block, 0.0);
            active = &b;
            blockIdx.x = g;
            for (unsigned t = 0; t < block; ++t) {
                Fiber& f = b.fibers[t];
                getcontext(&f.context);
                f.context.uc_stack.ss_sp = stacks[t].get();
                f.context.uc_stack.ss_size = stack_bytes;
                f.context.uc_link = nullptr;
                makecontext(&f.context, fiber_entry, 0);
            }
            run_block(b, (Schedule)schedule, rng);
            active = nullptr;
        }
    } catch (const std::exception& e) {
        active = nullptr;
        return e.what();
    }
    return "";
}

}  // namespace emu

inline void __syncthreads() { emu::yield_as(emu::AT_BLOCK_BARRIER); }

// Every lane publishes its value, waits for the warp, reads its partner's, and waits
// again so no lane overwrites a slot another lane has not read yet.
template <typename T> inline T __shfl_xor_sync(unsigned /*mask*/, T value, int lane_mask) {
    auto& slots = emu::active->shuffle_slots;
    const int t = emu::active->current;
    slots[t] = (double)value;
    emu::yield_as(emu::AT_WARP_BARRIER);
    const int partner = (t & ~31) | ((t & 31) ^ lane_mask);
    T got = (T)slots[partner];
    emu::yield_as(emu::AT_WARP_BARRIER);
    return got;
}
