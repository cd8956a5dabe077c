// SPDX-License-Identifier: Apache-2.0
/*
 * The Tracer owns one loaded BPF object: its links, its ring buffer and the uv_poll_t that
 * delivers records to JS on the Node event loop (no threads). Everything it holds is released by
 * one idempotent Teardown(), reached from close(), the finalizer and the environment's cleanup.
 */
#ifndef EXECWATCH_TRACER_H
#define EXECWATCH_TRACER_H

#include <napi.h>
#include <linux/types.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct bpf_object;
struct bpf_map;
struct bpf_link;
struct ring_buffer;

namespace execwatch
{

struct Poll;

class Tracer : public Napi::ObjectWrap<Tracer>
{
      public:
	static Napi::Function Define(Napi::Env env);
	explicit Tracer(const Napi::CallbackInfo &info);
	~Tracer() override;

      private:
	struct Options {
		std::string object_path;
		uint32_t argv_max_bytes;
		uint32_t ringbuf_bytes;
		/* Bytes waiting in the ring that make the kernel wake us; 0: every record. */
		uint32_t wakeup_bytes;
		/* How often the records below the threshold are collected, in ms. */
		uint32_t flush_interval_ms;
		/* Execs per second per cgroup (0: no limit), and the burst above it. */
		uint32_t cgroup_rate;
		uint32_t cgroup_burst;
	};

	static Options ParseOptions(const Napi::CallbackInfo &info);
	void Open(Napi::Env env, const Options &options);

	Napi::Value Attach(const Napi::CallbackInfo &info);
	Napi::Value Start(const Napi::CallbackInfo &info);
	Napi::Value Stats(const Napi::CallbackInfo &info);
	Napi::Value RingbufWaitingBytes(const Napi::CallbackInfo &info);
	Napi::Value WriteScope(const Napi::CallbackInfo &info);
	Napi::Value CgroupStats(const Napi::CallbackInfo &info);
	Napi::Value ProgramIds(const Napi::CallbackInfo &info);
	Napi::Value Close(const Napi::CallbackInfo &info);

	void ChooseCompatPrograms(Napi::Env env);
	void ThrowIfClosed(Napi::Env env, const char *method) const;
	void MapRingPositions(Napi::Env env);
	void DetachAll();
	void StopDelivery(napi_async_cleanup_hook_handle finished);
	void ReleaseCallback();
	void Teardown(napi_async_cleanup_hook_handle finished = nullptr);

	friend struct Poll;
	static void OnEnvCleanup(napi_async_cleanup_hook_handle handle, void *arg);
	static int OnSample(void *ctx, void *data, size_t size);
	/* Drains the ring into one call of onBatch; returns how many records it took. */
	int Deliver(int status);
	Napi::Buffer<uint8_t> GrowDelivery(Napi::Env env, Napi::Buffer<uint8_t> buffer);
	void CallOnBatch(Napi::Env env, Napi::Buffer<uint8_t> buffer);
	/* attached_names_ as a JS array. */
	Napi::Array AttachedNames(Napi::Env env) const;

	napi_env env_;
	bpf_object *obj_ = nullptr;
	bpf_map *events_ = nullptr;
	bpf_map *counters_ = nullptr;
	/*
	 * The ring buffer's consumer and producer pages, mapped read-only: bytes waiting to be
	 * consumed are read from them without a system call (libbpf 1.3's ring__avail_data_size()
	 * does the same; Debian 12 has libbpf 1.1).
	 */
	void *ring_positions_ = nullptr;
	size_t ring_positions_bytes_ = 0;
	/* The counters map, mapped read-only after load: stats() reads it without bpf(2). */
	const __u64 *counter_values_ = nullptr;
	size_t counter_bytes_ = 0;
	/* The scope table (struct execwatch_scope_table), mapped read-write after load: the agent
	 * rewrites it as pods come and go, without bpf(2). */
	void *scope_table_ = nullptr;
	size_t scope_bytes_ = 0;
	/* Throttled execs and lost events by cgroup (struct execwatch_cgroup_stats per possible
	 * CPU), mapped read-only after load: the agent reads them every second, without bpf(2). */
	void *cgroup_stats_ = nullptr;
	size_t cgroup_stats_bytes_ = 0;
	size_t cgroup_stats_length_ = 0;
	bool attached_ = false;
	std::vector<bpf_link *> links_;
	std::vector<std::string> attached_names_;
	/* The kernel's id of each attached program (0 if unknown), read at attach while privileged:
	 * run time per program is read by id (/proc/PID/fdinfo, with kernel.bpf_stats_enabled). */
	std::vector<uint32_t> attached_ids_;
	/* Programs not loaded: the ia32 exec path not in use, or both without ia32 emulation. */
	std::vector<std::string> unavailable_names_;
	ring_buffer *ringbuf_ = nullptr;
	uint32_t flush_interval_ms_ = 0;
	Poll *poll_ = nullptr;
	Napi::FunctionReference on_batch_;
	std::unique_ptr<Napi::AsyncContext> async_context_;
	/*
	 * One Buffer, reused by every wake-up: records are copied straight into it and JS gets it
	 * with the batch's length, so a steady stream of events allocates nothing here (no Buffer,
	 * no external memory, no page faults per wake-up). JS reads it only during the call;
	 * nothing writes it then (one thread, and close() does not drain mid-call).
	 */
	Napi::Reference<Napi::Buffer<uint8_t>> delivery_;
	/* Its bytes, capacity and the batch length while ring_buffer__consume() runs. */
	uint8_t *out_ = nullptr;
	size_t out_capacity_ = 0;
	size_t out_length_ = 0;
	/* Records of this wake-up that did not fit: the Buffer is then replaced by a larger one. */
	std::vector<uint8_t> overflow_;
	bool delivering_ = false;
	/* The callback threw once: its error is reported, close() does not drain into it again. */
	bool callback_threw_ = false;
	bool closed_ = false;
	napi_async_cleanup_hook_handle cleanup_hook_ = nullptr;
};

} // namespace execwatch

#endif // EXECWATCH_TRACER_H
